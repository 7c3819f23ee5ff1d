"""Whether, and when, a guardian hears about an event: pure rules, no database.

A school may switch a kind of message off for everyone (some schools do not want "left" messages);
each guardian picks the kinds they want, their channels in order of preference (the dispatcher
falls back along this list), quiet hours on the school's clock — which may cross midnight, e.g.
21:30–06:30 — and may take one daily digest instead of instant messages. :func:`decide` turns
all that into one of four answers with the reason, for the delivery log.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from server.core.zones import DEFAULT_TIMEZONE
from server.notify.messages import zone_info
from server.notify.templates import MessageKind


class Action(StrEnum):
    DELIVER_NOW = "deliver_now"
    HOLD_UNTIL = "hold_until"
    DIGEST = "digest"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    at: datetime | None = None
    """For ``hold_until``: when quiet hours end; for ``digest``: when the digest is due (UTC)."""


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuietHours(_Rules):
    """A daily window on the school's clock, ``start`` included, ``end`` excluded; when ``end`` is
    earlier than ``start`` the window crosses midnight."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end at the same time; leave them unset instead")
        if self.start.tzinfo or self.end.tzinfo:
            raise ValueError("quiet hours are on the school's clock; give times without a zone")
        return self

    def contains(self, clock: time) -> bool:
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def end_after(self, local: datetime) -> datetime:
        """The first end of the window after ``local`` (an aware time inside the window)."""
        end = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        return end if end > local else end + timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


class GuardianPreferences(_Rules):
    """One guardian's choices for one child."""

    channels: list[str] = Field(
        default_factory=list, description="Configured channel names, most preferred first."
    )
    kinds: frozenset[MessageKind] = frozenset(MessageKind)
    quiet_hours: QuietHours | None = None
    digest: bool = Field(default=False, description="One message a day instead of instant ones.")
    digest_at: time = time(18, 0)

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value


class SchoolPolicy(_Rules):
    """The school-wide switches and clock."""

    disabled_kinds: frozenset[MessageKind] = frozenset()
    zone: str = DEFAULT_TIMEZONE

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_info(value)
        return value


def unwanted(
    kind: str, disabled_kinds: Collection[str], guardian_kinds: Collection[str] | None
) -> str | None:
    """Why a ``kind`` message must not go out (the school's switch, then the guardian's kinds;
    ``None`` guardian kinds means every kind), or None when it may. Asked when a message is
    written and again when it is sent, so a switch thrown or a choice changed in between
    stops the messages still waiting too."""
    if kind in disabled_kinds:
        return f"the school has turned off {str(kind)!r} messages"
    if guardian_kinds is not None and kind not in guardian_kinds:
        return f"the guardian does not want {str(kind)!r} messages"
    return None


def decide(
    kind: MessageKind, now: datetime, guardian: GuardianPreferences, school: SchoolPolicy
) -> Decision:
    """What to do with a ``kind`` message for ``guardian`` at ``now`` (aware): the school's
    switch first, then the guardian's kinds and channels, digest, quiet hours."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    kind = MessageKind(kind)
    refused = unwanted(kind, school.disabled_kinds, guardian.kinds)
    if refused is not None:
        return Decision(Action.SKIP, refused)
    if not guardian.channels:
        return Decision(Action.SKIP, "the guardian has no channel")
    local = now.astimezone(zone_info(school.zone))
    quiet = guardian.quiet_hours
    if guardian.digest:
        due = datetime.combine(local.date(), guardian.digest_at, tzinfo=local.tzinfo)
        if due <= local:
            due += timedelta(days=1)
        if quiet and quiet.contains(due.time()):
            due = quiet.end_after(due)
        reason = f"the guardian chose a daily digest at {guardian.digest_at:%H:%M}"
        return Decision(Action.DIGEST, reason, due.astimezone(UTC))
    if quiet and quiet.contains(local.time()):
        return Decision(
            Action.HOLD_UNTIL, f"quiet hours {quiet}", quiet.end_after(local).astimezone(UTC)
        )
    return Decision(Action.DELIVER_NOW, "nothing holds it back")
