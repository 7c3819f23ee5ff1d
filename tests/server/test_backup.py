"""Backup → change → restore gives back exactly the rows of the backup, on both databases."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, select

from server.backup import BackupError, backup, restore
from server.db import create_db_engine
from server.migrations import current_revision, head_revision, upgrade
from server.models import Attendance, AuditLog, RawEvent, Student
from tests.server.conftest import World


@pytest.fixture
def tools(db_url: str) -> None:
    """Skip on PostgreSQL without its client tools."""
    if db_url.startswith("postgresql") and not (
        shutil.which("pg_dump") and shutil.which("pg_restore")
    ):
        pytest.skip("pg_dump/pg_restore are not installed (apt-get install postgresql-client)")


def every_row(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, in key order."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(table.select().order_by(*table.primary_key.columns))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


def some_history(db: Session, world: World) -> None:
    student = world.students[0]
    db.add(
        Attendance(
            student_id=student.id,
            date=date(2025, 10, 6),
            session_id=world.morning.id,
            status="late",
            source="gate",
            first_in=datetime(2025, 10, 6, 0, 20, tzinfo=UTC),
        )
    )
    db.add(
        RawEvent(
            event_id=uuid.uuid4(),
            device_id=world.devices["gate-1"].id,
            ts=datetime(2025, 10, 6, 0, 20, tzinfo=UTC),
            received_at=datetime(2025, 10, 6, 0, 20, 1, tzinfo=UTC),
            student_id=student.id,
            outcome="counted",
            payload={"note": "Nguyễn Văn Ánh — dữ liệu có dấu"},
        )
    )
    db.add(AuditLog(actor_id=world.teacher.id, action="test", entity="student", detail={"k": 1}))
    db.commit()


def test_restore_brings_back_exactly_the_backed_up_rows(
    tools: None, engine: Engine, db_url: str, db: Session, world: World, tmp_path: Path
) -> None:
    some_history(db, world)
    before = every_row(engine)
    backup(db_url, tmp_path / "campusgate.backup")

    db.delete(db.get(Student, world.students[1].id))
    db.exec(select(Attendance)).one().status = "present"
    db.add(AuditLog(action="later", entity="x"))
    db.commit()
    db.close()
    assert every_row(engine) != before

    restore(db_url, tmp_path / "campusgate.backup")
    engine.dispose()  # pooled connections may hold plans of the replaced tables
    assert every_row(engine) == before


def test_a_file_that_is_not_a_backup_is_refused_and_changes_nothing(
    tools: None, engine: Engine, db_url: str, db: Session, world: World, tmp_path: Path
) -> None:
    before = every_row(engine)
    db.close()
    bogus = tmp_path / "bogus.backup"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BackupError):
        restore(db_url, bogus)
    with pytest.raises(BackupError, match="not a file"):
        restore(db_url, tmp_path / "missing.backup")
    assert every_row(engine) == before


def test_a_backup_never_overwrites_a_file(
    tools: None, db_url: str, world: World, tmp_path: Path
) -> None:
    out = tmp_path / "campusgate.backup"
    out.write_text("keep me")
    with pytest.raises(BackupError, match="exists"):
        backup(db_url, out)
    assert out.read_text() == "keep me"


def test_a_backup_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'campusgate.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    out = backup(url, tmp_path / "campusgate.backup")
    with closing(sqlite3.connect(out)) as newer, newer:
        newer.execute("UPDATE alembic_version SET version_num = 'ffff'")
    with pytest.raises(BackupError, match="newer version"):
        restore(url, out)
    assert current_revision(engine) == head_revision()
    engine.dispose()
