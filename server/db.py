"""Database engines and sessions, the same way for SQLite (the default) and PostgreSQL.

SQLite is tuned for a server with several writers on one machine: WAL (readers never block the
writer), foreign keys on (SQLite leaves them off), a busy timeout (a writer waits for the lock
instead of failing at once), and ``BEGIN IMMEDIATE`` for sessions that will write. The last one
matters: a deferred transaction that reads and then writes fails with "database is locked",
without waiting, whenever another connection committed in between; taking the write lock up
front makes it wait its turn instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, Connection, Engine, Row, Table, create_engine, event, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlmodel import Session, SQLModel

from server.core.config import get_settings
from server.sqlite_writer_lock import connection_factory

SQLITE_BUSY_TIMEOUT_MS = 30_000
ROWS_PER_STATEMENT = 500  # in one IN list: well within SQLite's limit on parameters
_IMMEDIATE = "campusgate_begin_immediate"
T = TypeVar("T")


class DatabaseUrlError(ValueError):
    """A database URL campusgate cannot use; the message says which kinds it takes."""


def database_url(url: str | URL) -> URL:
    """``url`` parsed, with PostgreSQL's driver set to psycopg (3), the one campusgate ships;
    DatabaseUrlError for a database campusgate does not support."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend != "sqlite":
        raise DatabaseUrlError(
            f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://USER@HOST/DB"
        )
    return parsed


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://…``), set up as above.

    A SQLite file's directory is created if missing. ``kwargs`` go to SQLAlchemy's create_engine.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    if not parsed.database or parsed.database == ":memory:":
        raise DatabaseUrlError("SQLite needs a file (sqlite:///path/to/campusgate.db)")
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    timeout_s = SQLITE_BUSY_TIMEOUT_MS / 1000
    engine = create_engine(
        parsed,
        connect_args={
            "check_same_thread": False,
            "timeout": timeout_s,
            "factory": connection_factory(Path(parsed.database), timeout_s),
        },
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN, so it can choose IMMEDIATE (pysqlite would
    # otherwise open deferred transactions by itself, and only before DML).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # FULL syncs the WAL on every commit, so what ingest acknowledged survives a power cut too
    # (NORMAL would survive only a crash of the process).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(_IMMEDIATE, False)
    if immediate:
        # Queue fairly for the write lock (server.sqlite_writer_lock); released at the
        # connection's commit or rollback.
        connection.connection.dbapi_connection.take_writer_lock()
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock when they begin (no
    effect on PostgreSQL). Use it for every session that will write."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{_IMMEDIATE: True})


def insert_or_ignore(
    db: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    returning: Sequence[str] = (),
) -> list[Row]:
    """``INSERT … ON CONFLICT (conflict_columns) DO NOTHING`` of ``rows`` (all with the same
    keys) in the session's transaction: the way to create rows that another transaction may be
    creating at the same moment. Returns the ``returning`` columns of the rows it inserted.

    The statement's text never depends on the number of rows, so it is compiled (and, on
    PostgreSQL, parsed by psycopg) once, not once per batch: ingest calls this for every batch.
    """
    if not rows:
        return []
    table = model.__table__  # type: ignore[attr-defined]
    db.flush()  # keep the session's pending changes ahead of this statement
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        return _pg_insert_or_ignore(connection, table, rows, conflict_columns, returning)
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    result = connection.execute(statement, list(rows))
    return list(result) if returning else []


def _pg_insert_or_ignore(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict_columns: Sequence[str],
    returning: Sequence[str],
) -> list[Row]:
    """PostgreSQL: one array per column, spread back into rows by ``unnest()``."""
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    names = list(rows[0])
    arrays: dict[str, list[Any]] = {}
    casts = []
    for name in names:
        column_type = table.c[name].type
        values = [row[name] for row in rows]
        if isinstance(column_type, JSON):  # psycopg adapts a JSON value, not a list of them
            arrays[name] = [None if v is None else json.dumps(v) for v in values]
        else:
            process = column_type.bind_processor(dialect)
            arrays[name] = [process(v) for v in values] if process else values
        casts.append(f"CAST(:{name} AS {column_type.compile(dialect=dialect)}[])")
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(n) for n in names)}) SELECT * FROM unnest({', '.join(casts)}) "
        f"ON CONFLICT ({', '.join(quote(n) for n in conflict_columns)}) DO NOTHING"
    )
    if returning:
        sql += f" RETURNING {', '.join(quote(n) for n in returning)}"
    result = connection.execute(text(sql), arrays)
    return list(result) if returning else []


def in_chunks(rows: Sequence[T]) -> Iterator[Sequence[T]]:
    """``rows`` in slices of at most :data:`ROWS_PER_STATEMENT` (one ``IN`` list each)."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start : start + ROWS_PER_STATEMENT]


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back on an exception."""
    with Session(writer(engine) if write else engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def create_database(server_url: str, name: str) -> str:
    """Create the empty PostgreSQL database ``name`` on the server ``server_url`` points at
    (any database there; the user must be allowed to create databases) and return its URL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise DatabaseUrlError(f"database name {name!r}: use a-z, 0-9 and '_'")
    admin = create_engine(database_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return database_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database ``url`` names, closing its other connections first."""
    parsed = database_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@lru_cache
def get_engine() -> Engine:
    """The engine of this process, for the database in the settings."""
    return create_db_engine(get_settings().database_url)
