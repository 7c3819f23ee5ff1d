"""Column types that behave the same on SQLite and PostgreSQL.

Timestamps are stored in UTC and always come back as aware UTC datetimes: PostgreSQL keeps the
offset, SQLite keeps none, and code that compared a naive value with an aware one would fail (or,
worse, silently compare wall clocks). Enumerations are stored as their values in a VARCHAR with a
CHECK constraint rather than as a native PostgreSQL ENUM, so adding a value later is an ordinary
migration on both databases. (sqlmodel grew its own UTC type only in recent releases; this one
does not depend on the installed version.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Enum, TypeDecorator
from sqlalchemy.engine.interfaces import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; a naive one is refused instead of guessed."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UtcDateTime()"

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a time zone (store UTC)")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every stored value must have the same form.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_type(enum: type[StrEnum]) -> Enum:
    """A VARCHAR column of the enum's values with a CHECK constraint named after the enum."""
    return Enum(
        enum,
        name=enum.__name__.lower(),
        native_enum=False,
        create_constraint=True,
        # Room for values added later without widening the column.
        length=max(32, *(len(member.value) for member in enum)),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
