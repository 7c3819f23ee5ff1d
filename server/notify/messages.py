"""Rendering parent notifications: the right words, the child, the class, the school's clock.

Times are stored in UTC and shown in the school's zone (default ``Asia/Ho_Chi_Minh``) as
"07:12 ngày 02/12/2026", so a parent never has to convert. Every message comes in three forms
(subject, full text with diacritics, unaccented short text for SMS) plus the raw ``fields`` it was
made from, which template-based channels such as Zalo ZNS send instead of our wording.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from server.core.zones import DEFAULT_TIMEZONE
from server.notify.sms_text import to_gsm7
from server.notify.templates import PHRASES, TEMPLATES, Locale, MessageKind, Phrases

FIELD_NAMES = frozenset(
    {"kind", "student_name", "class_name", "time", "date", "gate", "school_name", "reason"}
)
"""The keys of :attr:`RenderedMessage.fields`, which template-based channels map their
parameters to."""


class MessageContext(BaseModel):
    """What a message is about; ``at`` is when it happened (or, for ``absent``, when the school
    marked it), any zone — it is shown in ``zone``."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    student_name: str = Field(min_length=1)
    class_name: str = Field(min_length=1)
    at: AwareDatetime
    gate: str | None = None
    school_name: str | None = None
    reason: str | None = None
    """Why the absence is excused, as the school recorded it."""
    zone: str = DEFAULT_TIMEZONE

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_info(value)
        return value

    @field_validator("student_name", "class_name", "gate", "school_name", "reason")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # These end up in e-mail headers and SMS: a line break would split or inject a header.
        if value is not None and any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ValueError("must be one line of text without control characters")
        return value


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    short_text_unaccented: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class DigestEvent:
    """One line of a daily digest."""

    kind: MessageKind
    at: datetime
    gate: str | None = None


def zone_info(name: str) -> ZoneInfo:
    """The zone called ``name``; ValueError (not KeyError) when unknown, so settings that name
    a zone fail validation with the field named."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name)") from None


def local_time(at: datetime, zone: str) -> tuple[str, str]:
    """("07:12", "02/12/2026") for ``at`` on the school's clock."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no zone to convert from; store times in UTC")
    local = at.astimezone(zone_info(zone))
    return local.strftime("%H:%M"), local.strftime("%d/%m/%Y")


def _school_prefix(phrases: Phrases, school_name: str | None) -> str:
    return phrases.school.format(school=school_name) if school_name else ""


def render(kind: MessageKind, locale: Locale, context: MessageContext) -> RenderedMessage:
    """The message for ``kind`` in ``locale`` ("vi" or "en") about ``context``."""
    template = TEMPLATES[locale][MessageKind(kind)]
    phrases = PHRASES[locale]
    clock, day = local_time(context.at, context.zone)
    reason = (context.reason or "").rstrip(" .")
    values = {
        "name": context.student_name,
        "class_name": context.class_name,
        "clock": clock,
        "date": day,
        "time": phrases.time.format(clock=clock, date=day),
        "gate": phrases.gate.format(gate=context.gate) if context.gate else "",
        "reason": phrases.reason.format(reason=reason) if reason else "",
        "school": _school_prefix(phrases, context.school_name),
    }
    fields = {
        "kind": str(kind),
        "student_name": context.student_name,
        "class_name": context.class_name,
        "time": clock,
        "date": day,
        "gate": context.gate or "",
        "school_name": context.school_name or "",
        "reason": reason,
    }
    return RenderedMessage(
        subject=template.subject.format(**values),
        text=template.text.format(**values),
        short_text_unaccented=to_gsm7(template.short.format(**values)),
        fields=fields,
    )


def render_digest(
    locale: Locale,
    context: MessageContext,
    day: date,
    events: Sequence[DigestEvent],
) -> RenderedMessage:
    """One message listing a child's events of ``day`` in time order, for guardians who chose a
    daily digest instead of instant messages. ``context`` names the child; its ``at`` is ignored."""
    if not events:
        raise ValueError("a digest needs at least one event")
    phrases = PHRASES[locale]
    day_text = day.strftime("%d/%m/%Y")
    lines, short_items = [], []
    for event in sorted(events, key=lambda e: e.at):
        clock, _ = local_time(event.at, context.zone)
        what = phrases.digest_events[event.kind]
        gate = phrases.gate.format(gate=event.gate) if event.gate else ""
        lines.append(f"- {clock} {what}{gate}")
        short_items.append(f"{clock} {what}")
    names = {"name": context.student_name, "class_name": context.class_name, "date": day_text}
    text = "\n".join([phrases.digest_heading.format(**names), *lines])
    short = phrases.digest_short.format(
        school=_school_prefix(phrases, context.school_name), events="; ".join(short_items), **names
    )
    return RenderedMessage(
        subject=phrases.digest_subject.format(**names),
        text=text,
        short_text_unaccented=to_gsm7(short),
        fields={
            "kind": "digest",
            "student_name": context.student_name,
            "class_name": context.class_name,
            "date": day_text,
            "school_name": context.school_name or "",
        },
    )


def opt_out_line(locale: Locale, url: str) -> str:
    """The footer that tells a guardian how to stop messages on a channel."""
    return PHRASES[locale].opt_out.format(url=url)
