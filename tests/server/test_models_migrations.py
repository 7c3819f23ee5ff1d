"""The schema: migrations give exactly the models' tables, and the columns behave alike on both
databases (UTC timestamps, enumerations, keys, cascades)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel, select

from server.db import create_database, create_db_engine, drop_database
from server.migrations import alembic_config, current_revision, head_revision, upgrade
from server.models import (
    Attendance,
    Card,
    School,
    SchoolBase,
    SchoolSessionBase,
    Student,
    StudentBase,
)
from tests.server.conftest import POSTGRES, World, fresh, postgres_reachable


def schema_differences(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


def test_upgrading_an_empty_database_gives_exactly_the_models_schema(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_the_schema_check_does_see_a_difference(engine: Engine) -> None:
    """Guard against a comparison that passes because it compares nothing."""
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_raw_event_ts"))
    try:
        assert [d[0] for d in schema_differences(engine)] == ["add_index"]
    finally:
        with engine.begin() as connection:
            connection.execute(text("CREATE INDEX ix_raw_event_ts ON raw_event (ts)"))


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A database of its own, for tests that take the schema apart."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    postgres_reachable()
    url = create_database(POSTGRES, f"cg_test_{secrets.token_hex(4)}")
    yield url
    drop_database(url)


def test_downgrade_to_nothing_and_upgrade_again(scratch_url: str) -> None:
    engine = create_db_engine(scratch_url)
    try:
        upgrade(engine)
        upgrade(engine)  # at head already: nothing to do
        config = alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(engine)
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_timestamps_are_stored_in_utc_and_naive_ones_refused(db: Session) -> None:
    hanoi = timezone(timedelta(hours=7))
    school = School(name="Trường A", created_at=datetime(2025, 9, 5, 7, 0, tzinfo=hanoi))
    db.add(school)
    db.commit()
    stored = fresh(db).get(School, school.id)
    assert stored.created_at == datetime(2025, 9, 5, 0, 0, tzinfo=UTC)
    assert stored.created_at.utcoffset() == timedelta(0)

    db.add(School(name="Trường B", created_at=datetime(2025, 9, 5, 7, 0)))
    with pytest.raises(StatementError, match="naive datetime"):
        db.commit()


def test_enumerations_are_checked_by_the_database(db: Session, world: World) -> None:
    with pytest.raises(IntegrityError):
        db.exec(
            text(
                "INSERT INTO attendance (student_id, date, session_id, status, source, updated_at)"
                " VALUES (:s, '2025-10-06', :m, 'sleeping', 'gate', '2025-10-06 00:00:00')"
            ).bindparams(s=world.students[0].id, m=world.morning.id)
        )


def test_a_card_belongs_to_one_student(db: Session, world: World) -> None:
    db.add(Card(uid="04A1B2C3D4E5F6", student_id=world.students[0].id))
    db.commit()
    db.add(Card(uid="04A1B2C3D4E5F6", student_id=world.students[1].id))
    with pytest.raises(IntegrityError):
        db.commit()


def test_a_national_id_belongs_to_one_student_and_many_have_none(db: Session, world: World) -> None:
    first, second, third = world.students  # none has a national ID: NULLs never clash
    first.national_id = "079208001234"
    db.add(first)
    db.commit()
    second.national_id = "079208001234"
    db.add(second)
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    assert fresh(db).get(Student, third.id).national_id is None


def test_erasing_a_student_takes_their_cards_and_attendance(db: Session, world: World) -> None:
    student = world.students[0]
    db.add(Card(uid="04A1B2C3D4E5F6", student_id=student.id))
    db.add(
        Attendance(
            student_id=student.id,
            date=datetime(2025, 10, 6).date(),
            session_id=world.morning.id,
            status="present",
            source="gate",
        )
    )
    db.commit()
    db.delete(student)
    db.commit()
    assert fresh(db).exec(select(Card)).all() == []
    assert db.exec(select(Attendance)).all() == []
    assert len(db.exec(select(Student)).all()) == len(world.students) - 1


def test_input_schemas_say_what_is_wrong() -> None:
    with pytest.raises(ValidationError, match="late_after <= absent_after"):
        SchoolSessionBase(
            school_id=1,
            code="morning",
            name="Buổi sáng",
            start=time(7, 0),
            late_after=time(7, 30),
            absent_after=time(7, 15),
            end=time(11, 30),
        )
    with pytest.raises(ValidationError, match="unknown time zone"):
        SchoolBase(name="Trường A", timezone="Asia/Hanoi_City")
    with pytest.raises(ValidationError, match="pattern"):
        StudentBase(code="HS 1", full_name="Lê Văn A", school_id=1)
    with pytest.raises(ValidationError, match="pattern"):
        StudentBase(code="HS1", full_name="Lê Văn A", school_id=1, national_id="07920800123X")
