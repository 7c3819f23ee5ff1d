"""SQLite writers take turns through the writer lock: across threads and processes, released at
commit, rollback or close, and never waited on past the busy timeout."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from server.db import create_db_engine, session_scope
from server.sqlite_writer_lock import connection_factory


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "campusgate.db"
    engine = create_db_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE log (who TEXT, at REAL)"))
    engine.dispose()
    return path


def test_a_second_writer_waits_for_the_first_to_commit(database: Path) -> None:
    engine = create_db_engine(f"sqlite:///{database}")
    first_holds, first_may_commit = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with session_scope(engine, write=True) as db:
            db.execute(text("INSERT INTO log VALUES ('first', 0)"))
            first_holds.set()
            first_may_commit.wait(10)
            order.append("first commits")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_holds.wait(10)
    second = threading.Thread(target=lambda: _write(engine, "second", order))
    second.start()
    time.sleep(0.3)
    assert order == []  # still waiting for its turn
    first_may_commit.set()
    thread.join(10)
    second.join(10)
    assert order == ["first commits", "second wrote"]
    engine.dispose()


def _write(engine, who: str, order: list[str]) -> None:
    with session_scope(engine, write=True) as db:
        db.execute(text(f"INSERT INTO log VALUES ('{who}', 0)"))
        order.append(f"{who} wrote")


def test_a_rolled_back_or_closed_writer_lets_the_next_one_in(database: Path) -> None:
    factory = connection_factory(database, timeout_s=2.0)
    a = sqlite3.connect(database, factory=factory, isolation_level=None)
    b = sqlite3.connect(database, factory=factory, isolation_level=None)
    a.take_writer_lock()
    a.rollback()
    b.take_writer_lock()  # would wait 2 s and fail had the rollback kept the lock
    b.close()
    a.take_writer_lock()
    a.close()


def test_a_writer_gives_up_after_the_busy_timeout(database: Path) -> None:
    factory = connection_factory(database, timeout_s=0.2)
    holder = sqlite3.connect(database, factory=factory)
    waiter = sqlite3.connect(database, factory=factory)
    holder.take_writer_lock()
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        waiter.take_writer_lock()
    holder.close()
    waiter.close()


def _hold_in_another_process(database: str, held, release) -> None:
    connection = sqlite3.connect(database, factory=connection_factory(Path(database), 10.0))
    connection.take_writer_lock()
    held.set()
    release.wait(10)
    connection.commit()


def test_processes_take_turns_too(database: Path) -> None:
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_another_process, args=(str(database), held, release))
    child.start()
    try:
        assert held.wait(30)
        here = sqlite3.connect(database, factory=connection_factory(database, timeout_s=0.3))
        with pytest.raises(sqlite3.OperationalError):
            here.take_writer_lock()
        release.set()
        child.join(10)
        here.take_writer_lock()  # free once the other process committed
        here.close()
    finally:
        release.set()
        child.join(10)
