"""Back up and restore the server's database, consistently, while it may be in use.

SQLite uses its online backup API: a consistent copy even while ingest writes (the copy starts
over if a write lands mid-way), WAL content included. PostgreSQL uses ``pg_dump``'s custom format
and ``pg_restore`` in a single transaction. Either way a restore first checks that the file is a
campusgate backup this version can read, so a wrong file is refused and changes nothing.

Restoring replaces the database's contents: stop the server first.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from server.db import database_url
from server.migrations import alembic_config

log = logging.getLogger(__name__)


class BackupError(RuntimeError):
    """A backup or restore that could not be done; the message says why and what to do."""


def backup(url: str, out: Path) -> Path:
    """Write a backup of the database at ``url`` to ``out`` (which must not exist yet)."""
    parsed = database_url(url)
    if out.exists():
        raise BackupError(f"{out} exists; choose a new file (a backup never overwrites one)")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        if parsed.get_backend_name() == "sqlite":
            _sqlite_copy(_sqlite_file(parsed, must_exist=True), partial)
        else:
            _run_pg_tool("pg_dump", parsed, "--format=custom", f"--file={partial}", what="dump")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    log.info("backup written", extra={"file": str(out), "bytes": out.stat().st_size})
    return out


def restore(url: str, source: Path) -> None:
    """Replace the contents of the database at ``url`` with the backup ``source``."""
    parsed = database_url(url)
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_backup(source)
        _sqlite_copy(source, _sqlite_file(parsed, must_exist=False))
    else:
        _check_known_revision(_pg_backup_revision(source), source)
        _run_pg_tool(
            "pg_restore",
            parsed,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            str(source),
            what="restore the backup",
        )
    log.info("backup restored", extra={"file": str(source)})


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_file(url: URL, *, must_exist: bool) -> Path:
    path = Path(url.database or "")
    if must_exist and not path.is_file():
        raise BackupError(f"no database at {path}")
    return path


def _sqlite_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def _check_sqlite_backup(source: Path) -> None:
    """A readable, intact SQLite file at a revision of the schema this code knows."""
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as db:
            (integrity,) = db.execute("PRAGMA quick_check").fetchone()
            revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{source} is not a campusgate SQLite backup ({exc})") from None
    if integrity != "ok":
        raise BackupError(f"{source} is damaged: {integrity}")
    if revision is None:
        raise BackupError(f"{source} holds no schema revision; it is not a campusgate backup")
    _check_known_revision(revision[0], source)


def _check_known_revision(revision: str, source: Path) -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    if revision not in {script.revision for script in scripts.walk_revisions()}:
        raise BackupError(
            f"{source} is at schema revision {revision!r}, which this campusgate does not know "
            "(a backup from a newer version?); restore it with that version"
        )


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_backup_revision(source: Path) -> str:
    """The schema revision recorded in a pg_dump archive (pg_restore refuses a file that is not
    one, with a clear message)."""
    script = _run_pg_tool(
        "pg_restore",
        None,
        "--data-only",
        "--table=alembic_version",
        "--file=-",
        str(source),
        what="read the backup",
    )
    lines = script.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and number + 1 < len(lines):
            return lines[number + 1].strip()
    raise BackupError(f"{source} holds no schema revision; it is not a campusgate backup")


def _run_pg_tool(tool: str, url: URL | None, *args: str, what: str = "finish") -> str:
    """Run pg_dump/pg_restore (against ``url`` when given) and return what it printed. The
    password goes in the environment, not on the command line where any user could read it."""
    found = shutil.which(tool)
    if found is None:
        raise BackupError(
            f"{tool} is not installed; install the PostgreSQL client tools "
            "(Debian/Ubuntu: apt-get install postgresql-client) of the server's major version"
        )
    env = dict(os.environ)
    target = []
    if url is not None:
        if url.password is not None:
            env["PGPASSWORD"] = str(url.password)
        libpq = url.set(drivername="postgresql", password=None)
        target = [f"--dbname={libpq.render_as_string(hide_password=False)}"]
    result = subprocess.run([found, *args, *target], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        detail = result.stderr.strip() or f"exit status {result.returncode}"
        raise BackupError(f"{tool} could not {what}: {detail}")
    return result.stdout
