"""Schema migrations (Alembic): run at start-up by ``campusgate server run`` and by
``campusgate server migrate``; the revisions live in ``versions/``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from server.db import writer

HERE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """Alembic's configuration pointing at this directory (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "server/migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (idempotent: at head already, nothing happens)."""
    config = alembic_config()
    with writer(engine).connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
