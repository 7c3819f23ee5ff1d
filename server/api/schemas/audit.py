"""The audit log as the API filters, pages and shows it (``GET /api/v1/audit``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from server.api.schemas.common import MAX_ID

MAX_PAGE = 1000


def _in_utc(value: datetime) -> datetime:
    # A time at the edge of the calendar (year 1 at +14:00) has no UTC form: a 422, not a 500.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("thời điểm ngoài phạm vi / time out of range") from None


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A moment with its offset (RFC 3339, e.g. ``2026-12-02T07:12:00+07:00``)."""
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class AuditQuery(BaseModel):
    """Filters (all optional, combined with AND) and a page: newest first, ``before_id`` for
    the next page, so a page stays the same while new entries arrive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student_id: Id | None = None
    actor_id: Id | None = None
    action: str | None = Field(default=None, max_length=64, description="e.g. 'student.read'.")
    entity: str | None = Field(default=None, max_length=64, description="A table, e.g. 'student'.")
    since: Instant | None = Field(default=None, description="Entries at or after this moment.")
    until: Instant | None = Field(default=None, description="Entries before this moment.")
    before_id: Id | None = Field(default=None, description="The page after this entry.")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class AuditEntry(BaseModel):
    """One entry: who (``actor_id`` None is the system, or a link followed from a message),
    did what to which row, and the details (for a change, ``before`` and ``after``)."""

    id: int
    at: datetime
    actor_id: int | None
    actor_username: str | None
    action: str
    entity: str
    entity_id: str | None
    student_id: int | None
    detail: dict[str, Any]
    ip: str | None
