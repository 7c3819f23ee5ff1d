"""The live roll's watcher of the database (server.web.roll_watch), on both databases: a change
committed by another connection wakes the rolls it concerns, an idle roll asks the database
nothing, the PostgreSQL watcher survives losing its connection, and migration 0007 adds and
removes the triggers that feed it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from alembic import command
from anyio import to_thread
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from server.attendance import set_status_manually
from server.db import create_db_engine
from server.migrations import alembic_config, upgrade
from server.models import AttendanceStatus, SchoolClass, Student
from server.web import live_roll
from server.web.live_roll import roll_json, roll_stream
from server.web.roll_watch import (
    APPLICATION_NAME,
    Interest,
    class_day_signature,
    roll_watcher,
    stop_watchers,
)
from tests.server.conftest import World
from tests.server.test_models_migrations import scratch_url  # noqa: F401  (a database to take apart)

DAY = date(2025, 10, 6)  # a Monday of the test school's term
DEADLINE_S = 30.0
"""How long a test waits for what must happen before it calls it a failure (never a measure)."""

on_postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` on an event loop of its own, as a web process would (in a thread: the
    browser tests' Playwright keeps a loop running in this one), and stop the watchers it
    started."""
    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, scenario()).result()
    finally:
        stop_watchers()


async def woken(interest: Interest) -> bool:
    return await interest.wait(DEADLINE_S)


def mark(engine: Engine, world: World, student: Student, day: date = DAY) -> None:
    """A teacher's correction, committed on a connection of its own."""
    with Session(engine) as db:
        set_status_manually(
            db,
            student_id=student.id,
            day=day,
            session_id=world.morning.id,
            status=AttendanceStatus.EXCUSED,
            user_id=world.teacher.id,
            note="ốm",
        )
        db.commit()


def another_class(engine: Engine, world: World, name: str, code: str) -> tuple[int, Student]:
    """Another class of the school (its id), with one student."""
    with Session(engine, expire_on_commit=False) as db:
        school_class = SchoolClass(
            school_id=world.school.id, school_year_id=world.year.id, name=name, grade=10
        )
        db.add(school_class)
        db.flush()
        student = Student(
            code=code, full_name="Đỗ Văn Khoa", school_id=world.school.id, class_id=school_class.id
        )
        db.add(student)
        db.commit()
    return school_class.id, student


def test_a_change_committed_elsewhere_wakes_the_roll_of_that_class_and_day(
    engine: Engine, world: World
) -> None:
    async def scenario() -> None:
        with roll_watcher(engine).watch(world.school_class.id) as interest:
            interest.follow(DAY, None)
            assert await woken(interest)  # the watcher listens: every roll checks once
            await to_thread.run_sync(mark, engine, world, world.students[0])
            assert await woken(interest)

    run(scenario)


def test_only_the_rolls_a_change_concerns_wake(engine: Engine, world: World) -> None:
    other, newcomer = another_class(engine, world, "10A2", "HS98")
    last, latecomer = another_class(engine, world, "10A3", "HS99")

    async def scenario() -> None:
        watcher = roll_watcher(engine)
        with (
            watcher.watch(world.school_class.id) as mine,
            watcher.watch(other) as theirs,
            watcher.watch(last) as fence,
        ):
            for interest in (mine, theirs, fence):
                interest.follow(DAY, None)
                assert await woken(interest)

            await to_thread.run_sync(mark, engine, world, newcomer)
            await to_thread.run_sync(mark, engine, world, world.students[0], DAY + timedelta(1))
            await to_thread.run_sync(mark, engine, world, latecomer)
            assert await woken(theirs) and await woken(fence)
            # The watchers see commits in order: once the last one's wake-up came, a wrong one
            # would have too.
            assert not await mine.wait(0)

            await to_thread.run_sync(move, engine, newcomer, world.school_class.id)
            assert await woken(mine) and await woken(theirs)
            assert not await fence.wait(0)

    run(scenario)


def move(engine: Engine, student: Student, class_id: int) -> None:
    with Session(engine) as db:
        moved = db.get(Student, student.id)
        moved.class_id = class_id
        db.commit()


def test_an_idle_roll_asks_the_database_nothing_and_still_sees_a_change(
    engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_roll, "HEARTBEAT_S", 0.3)
    school_class, student = world.school_class, world.students[1]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "attendance" in statement.lower():
            statements.append(statement)

    async def scenario() -> None:
        watcher = roll_watcher(engine)
        with watcher.watch(0) as started:
            assert await woken(started)  # past the watcher's first wake-up of every roll
        with watcher.watch(school_class.id) as interest:
            with Session(engine) as db:  # as the route does
                signature = class_day_signature(db, school_class.id, DAY)
                first = roll_json(db, school_class, DAY)
            stream = roll_stream(engine, interest, school_class, first, signature, DAY)
            try:
                assert (await anext(stream)).startswith("retry: 1000\n\nevent: snapshot\n")
                event.listen(engine, "before_cursor_execute", count)
                for _ in range(3):  # 0.9 s: the old poll read the attendance 3 times meanwhile
                    assert await asyncio.wait_for(anext(stream), DEADLINE_S) == ": keep-alive\n\n"
                assert statements == []

                await to_thread.run_sync(mark, engine, world, student)
                update = await asyncio.wait_for(anext(stream), DEADLINE_S)
                assert update.startswith("event: update\n")
                assert f'"student_id": {student.id}' in update and '"excused"' in update
                assert statements  # the counting did see the rebuild
            finally:
                event.remove(engine, "before_cursor_execute", count)
                await stream.aclose()

    run(scenario)


def listener_pids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        )
        return set(rows.scalars())


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
    return found


@on_postgresql
def test_the_postgresql_watcher_reconnects_and_still_wakes_the_roll(
    engine: Engine, world: World
) -> None:
    async def scenario() -> None:
        watcher = roll_watcher(engine)
        with watcher.watch(world.school_class.id) as mine, watcher.watch(0) as control:
            mine.follow(DAY, None)
            assert await woken(mine) and await woken(control)
            listening = await to_thread.run_sync(wait_for, lambda: listener_pids(engine), "LISTEN")
            with engine.begin() as connection:
                for pid in listening:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

            assert await woken(control)  # listening again: every roll checks once more
            await to_thread.run_sync(
                wait_for, lambda: listener_pids(engine) - listening, "a new LISTEN connection"
            )
            await mine.wait(0)  # (the reconnection's wake-up)
            await to_thread.run_sync(mark, engine, world, world.students[2])
            assert await woken(mine)

    run(scenario)


def roll_triggers(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as connection:
        triggers = connection.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'cg_roll_%' ORDER BY tgname")
        )
        functions = connection.execute(
            text("SELECT proname FROM pg_proc WHERE proname LIKE 'cg_roll_%' ORDER BY proname")
        )
        return list(triggers.scalars()), list(functions.scalars())


@pytest.mark.parametrize("scratch_url", ["postgresql"], indirect=True)
def test_migration_0007_adds_the_roll_triggers_and_takes_them_away(scratch_url: str) -> None:  # noqa: F811
    engine = create_db_engine(scratch_url)
    try:
        upgrade(engine)
        triggers, functions = roll_triggers(engine)
        assert triggers == [
            f"cg_roll_{table}_{event}"
            for table in ("attendance", "student")
            for event in ("delete_old", "insert_new", "update_new", "update_old")
        ]
        assert functions == ["cg_roll_attendance_changed", "cg_roll_student_changed"]

        config = alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
        assert roll_triggers(engine) == ([], [])
    finally:
        engine.dispose()
