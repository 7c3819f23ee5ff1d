"""Databases for the server's tests: every test runs on SQLite and on PostgreSQL.

Each database is created fresh for the test session (a temporary SQLite file; a database named
``cg_test_<random>`` on the PostgreSQL server in $CAMPUSGATE_TEST_POSTGRES), brought to head by
the project's own migrations, emptied after every test and dropped at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel

from server.db import create_database, create_db_engine, drop_database
from server.migrations import upgrade
from server.models import (
    Device,
    School,
    SchoolClass,
    SchoolSession,
    SchoolYear,
    Site,
    Student,
    Term,
    User,
)

POSTGRES = os.environ.get(
    "CAMPUSGATE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_engines: dict[str, Engine] = {}  # one per database URL, shared by the tests of the session


def postgres_reachable() -> None:
    """Skip the test, saying why, when the PostgreSQL server is not there."""
    probe = create_db_engine(POSTGRES)
    try:
        with probe.connect():
            pass
    except OperationalError as exc:
        pytest.skip(
            f"PostgreSQL is not reachable at {POSTGRES} ({exc.orig}); set "
            "CAMPUSGATE_TEST_POSTGRES to a server where this user may create databases"
        )
    finally:
        probe.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a fresh database at the head revision, one per backend for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'campusgate.db'}"
    else:
        postgres_reachable()
        url = create_database(POSTGRES, f"cg_test_{secrets.token_hex(4)}")
    try:
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        used = _engines.pop(url, None)
        if used is not None:
            used.dispose()
        if request.param == "postgresql":
            drop_database(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """The session's engine on ``db_url``; every table is emptied after the test."""
    if db_url not in _engines:
        _engines[db_url] = create_db_engine(db_url)
    engine = _engines[db_url]
    yield engine
    tables = [table.name for table in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            joined = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data (expire_on_commit off, so objects stay
    readable after a commit)."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def fresh(db: Session) -> Session:
    """``db`` after ending its transaction and forgetting loaded objects, so that it sees what
    other connections committed (a SQLite read transaction keeps its snapshot)."""
    db.rollback()
    db.expire_all()
    return db


# --- a school to test with ------------------------------------------------------------------------

MORNING = dict(start=time(7, 0), late_after=time(7, 15), absent_after=time(7, 30), end=time(11, 30))
AFTERNOON = dict(
    start=time(13, 30), late_after=time(13, 45), absent_after=time(14, 0), end=time(17, 0)
)
TERM = (date(2025, 9, 5), date(2026, 1, 16))


@dataclass
class World:
    """One school as the tests see it."""

    school: School
    site: Site
    year: SchoolYear
    morning: SchoolSession
    afternoon: SchoolSession
    school_class: SchoolClass
    teacher: User
    students: list[Student] = field(default_factory=list)
    devices: dict[str, Device] = field(default_factory=dict)


def make_school(
    db: Session,
    *,
    site: str = "school-a",
    devices: tuple[str, ...] = ("gate-1", "gate-2"),
    students: int = 3,
    timezone: str = "Asia/Ho_Chi_Minh",
    prefix: str = "HS",
) -> World:
    """A school in Vietnam's zone: Mon-Fri, one term (TERM), a morning and an afternoon session
    (MORNING, AFTERNOON), class 10A1 with ``students`` active students ``{prefix}1``…, and the
    given gates at ``site``."""
    school = School(name=f"Trường THPT {site}", timezone=timezone)
    db.add(school)
    db.flush()
    site_row = Site(code=site, name=site, school_id=school.id)
    year = SchoolYear(school_id=school.id, name="2025-2026", starts_on=TERM[0], ends_on=TERM[1])
    teacher = User(username=f"teacher-{site}", full_name="Cô Nguyễn Thị Lan", role="teacher")
    db.add_all([site_row, year, teacher])
    db.flush()
    db.add(Term(school_year_id=year.id, name="Học kỳ I", starts_on=TERM[0], ends_on=TERM[1]))
    morning = SchoolSession(school_id=school.id, code="morning", name="Buổi sáng", **MORNING)
    afternoon = SchoolSession(school_id=school.id, code="afternoon", name="Buổi chiều", **AFTERNOON)
    school_class = SchoolClass(
        school_id=school.id,
        school_year_id=year.id,
        name="10A1",
        grade=10,
        homeroom_teacher_id=teacher.id,
    )
    db.add_all([morning, afternoon, school_class])
    db.flush()
    world = World(school, site_row, year, morning, afternoon, school_class, teacher)
    for n in range(1, students + 1):
        student = Student(
            code=f"{prefix}{n}",
            full_name=f"Học sinh {n}",
            school_id=school.id,
            class_id=school_class.id,
        )
        db.add(student)
        world.students.append(student)
    for device_id in devices:
        device = Device(
            site_id=site_row.id, device_id=device_id, credential_id=f"{site}.{device_id}"
        )
        db.add(device)
        world.devices[device_id] = device
    db.commit()
    return world


@pytest.fixture
def world(db: Session) -> World:
    """The default test school at site ``school-a`` with gates ``gate-1`` and ``gate-2``."""
    return make_school(db)
