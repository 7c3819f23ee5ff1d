"""Tell the teachers' open live rolls what changed (server.web.roll_watch), on PostgreSQL:
triggers send ``NOTIFY cg_roll`` with ``<class_id>:<YYYY-MM-DD>`` for every class and day whose
attendance a statement wrote or removed, and ``<class_id>:*`` for every class whose students a
statement added, removed, moved (old and new class) or edited.

Statement-level triggers reading the statement's rows from transition tables: one notification
per class and day however many rows a batch of ingest touched, and PostgreSQL folds identical
notifications of one transaction into one. A trigger with transition tables may fire on one
event only, so there is one per event, and two for UPDATE: one sees the rows as they were, the
other as they are. All of a table's triggers call one function, which reads the rows as
``changed``. ``EXECUTE FUNCTION`` needs PostgreSQL 11 or later.

SQLite has no NOTIFY; its watcher reads ``PRAGMA data_version`` instead, so nothing to do there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "cg_roll"  # server.web.roll_watch.CHANNEL, written out: a revision never changes

# What each table's function notifies, from its ``changed`` rows.
KEYS = {
    "attendance": (
        "SELECT DISTINCT student.class_id::text || ':' || to_char(changed.date, 'YYYY-MM-DD') "
        "FROM changed JOIN student ON student.id = changed.student_id "
        "WHERE student.class_id IS NOT NULL"
    ),
    "student": (
        "SELECT DISTINCT changed.class_id::text || ':*' FROM changed "
        "WHERE changed.class_id IS NOT NULL"
    ),
}
# (event, the transition table that becomes ``changed``) of each trigger, on both tables.
TRIGGERS = (("INSERT", "NEW"), ("UPDATE", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD"))


def _function(table: str) -> str:
    return f"cg_roll_{table}_changed"


def _trigger(table: str, event: str, rows: str) -> str:
    return f"cg_roll_{table}_{event.lower()}_{rows.lower()}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, keys in KEYS.items():
        op.execute(
            f"CREATE FUNCTION {_function(table)}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n"
            f"    PERFORM pg_notify('{CHANNEL}', key) FROM ({keys}) AS touched (key);\n"
            f"    RETURN NULL;\n"
            f"END\n"
            f"$$"
        )
        for event, rows in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event, rows)} AFTER {event} ON {table} "
                f"REFERENCING {rows} TABLE AS changed FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {_function(table)}()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in KEYS:
        for event, rows in TRIGGERS:
            op.execute(f"DROP TRIGGER {_trigger(table, event, rows)} ON {table}")
        op.execute(f"DROP FUNCTION {_function(table)}()")
