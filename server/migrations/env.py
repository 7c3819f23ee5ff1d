"""Alembic environment: the target is the SQLModel metadata of :mod:`server.models`.

The database comes from, in order: a connection handed over by :func:`server.migrations.upgrade`
(``config.attributes["connection"]``), ``sqlalchemy.url`` in the Alembic config, or the server's
settings. SQLite gets batch mode, since it can alter a table only by copying it. Generate new
revisions against PostgreSQL, which renders plain ``op.create_index`` calls.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import server.auth_models  # (registers the API's credential tables too)
import server.gallery_models  # (and gallery publishing's)
import server.models  # (registers the tables on SQLModel.metadata)
import server.notify.models  # noqa: F401  (and the notification outbox's)
from server.core.config import get_settings
from server.db import create_db_engine
from server.sqltypes import UtcDateTime

config = context.config


def _render_item(kind: str, obj: Any, _context: Any) -> str | bool:
    """Write our column types as the plain SQLAlchemy types they create, so that a revision
    does not change meaning when the Python side of a type evolves."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("campusgate migrations run online only: give a database, not --sql")
connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    with create_db_engine(url, poolclass=NullPool).connect() as connection:
        _run(connection)
