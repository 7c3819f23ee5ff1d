"""``gatectl backup`` from a running server (uvicorn in its own process) and ``gatectl restore``
on its host, on SQLite and on PostgreSQL: backup, change, restore, and every row is back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from server.models import AuditLog, Role, Student
from tests.firmware_tools.school_server import admin_token, school_server, server_env
from tests.server.conftest import World, db, db_url, engine, world  # noqa: F401 (fixtures)
from tests.server.test_backup import every_row, some_history, tools  # noqa: F401 (fixture)

GATECTL = Path(sys.executable).parent / "gatectl"


def gatectl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GATECTL), *args], capture_output=True, text=True, env=env, timeout=180
    )


def test_a_backup_taken_over_http_restores_every_row(
    tools: None,  # noqa: F811
    engine: Engine,  # noqa: F811
    db_url: str,  # noqa: F811
    db: Session,  # noqa: F811
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    some_history(db, world)
    env = server_env(db_url, tmp_path / "server")
    out = tmp_path / "school.backup"
    admin = dict(env, CAMPUSGATE_TOKEN=admin_token(db))
    technician = dict(env, CAMPUSGATE_TOKEN=admin_token(db, Role.TECHNICIAN))
    with school_server(env, tmp_path / "server.log") as url:
        refused = gatectl("backup", "--out", str(out), "--server", url, env=technician)
        assert refused.returncode == 1 and "403" in refused.stderr and not out.exists()

        done = gatectl("backup", "--out", str(out), "--server", url, "--json", env=admin)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["bytes"] == out.stat().st_size
        assert report["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
        again = gatectl("backup", "--out", str(out), "--server", url, env=admin)
        assert again.returncode == 2 and "exists" in again.stderr
    assert list(tmp_path.glob("*.partial")) == []
    db.rollback()
    downloads = db.exec(select(AuditLog).where(AuditLog.action == "database.backup")).all()
    assert len(downloads) == 1 and downloads[0].detail == {"backend": engine.dialect.name}
    before = every_row(engine)

    db.delete(db.get(Student, world.students[1].id))
    db.add(AuditLog(action="later", entity="x"))
    db.commit()
    db.close()
    changed = every_row(engine)
    assert changed != before

    unconfirmed = gatectl("restore", str(out), env=env)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    bogus = tmp_path / "bogus.backup"
    bogus.write_bytes(b"not a database" * 100)
    assert gatectl("restore", str(bogus), "--yes", env=env).returncode == 1
    engine.dispose()
    assert every_row(engine) == changed

    restored = gatectl("restore", str(out), "--yes", env=env)
    assert restored.returncode == 0, restored.stderr
    engine.dispose()  # pooled connections may hold plans of the replaced tables
    assert every_row(engine) == before


def test_restore_refuses_a_missing_file(tmp_path: Path) -> None:
    done = gatectl("restore", str(tmp_path / "none.backup"), "--yes", env=dict(os.environ))
    assert done.returncode == 2 and "is not a file" in done.stderr
