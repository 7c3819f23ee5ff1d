"""Backup over HTTP: an admin downloads a consistent copy of the whole database.

The file is the one ``campusgate server backup`` writes (:mod:`server.backup`: SQLite's online
backup API, or ``pg_dump``'s custom format), made into a temporary folder while the server
keeps running and deleted once sent, so ``campusgate server restore`` (or ``gatectl restore``)
takes it back. It holds every student's personal data, so each download is in the audit log,
committed before the copy is made.

There is deliberately no restore route: a restore replaces every row under the running
server's connections and ingest workers (the server must be stopped), and an admin token that
leaked from a laptop must not be enough to overwrite a school's records from afar. Restoring
stays a command on the server host (see :mod:`firmware_tools.backup_cli`).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse
from sqlalchemy import Engine
from starlette.background import BackgroundTask

from server import audit
from server.api.deps import AdminUser, SessionDep, client_ip, get_engine
from server.backup import BackupError, backup

router = APIRouter(prefix="/admin", tags=["admin"])

EngineDep = Annotated[Engine, Depends(get_engine)]


@router.post(
    "/backup",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The backup file (SQLite database or pg_dump custom archive).",
        },
        503: {"description": "The backup could not be made (e.g. pg_dump missing)."},
    },
)
def download_backup(
    admin: AdminUser, db: SessionDep, engine: EngineDep, request: Request
) -> FileResponse:
    """A consistent backup of the whole database, made now while the server runs; restore it
    on the server host with ``campusgate server restore FILE`` (server stopped). Admins only;
    every download is audited."""
    backend = engine.dialect.name
    audit.record(
        db,
        actor_id=admin.id,
        action="database.backup",
        entity="database",
        detail={"backend": backend},
        ip=client_ip(request),
    )
    db.commit()
    folder = Path(tempfile.mkdtemp(prefix="campusgate-backup-"))
    name = f"campusgate-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.backup"
    try:
        made = backup(engine.url.render_as_string(hide_password=False), folder / name)
    except BackupError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"không sao lưu được / the backup failed: {exc}",
        ) from None
    return FileResponse(
        made,
        media_type="application/octet-stream",
        filename=name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
