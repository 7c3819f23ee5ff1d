"""When a guardian hears about an event: school switches, kinds, quiet hours, digest."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError

from server.notify.preferences import (
    Action,
    GuardianPreferences,
    QuietHours,
    SchoolPolicy,
    decide,
)
from server.notify.templates import MessageKind

HANOI = timezone(timedelta(hours=7))
SCHOOL = SchoolPolicy()
NIGHT = QuietHours(start=time(21, 30), end=time(6, 30))
GUARDIAN = GuardianPreferences(channels=["push", "sms"], quiet_hours=NIGHT)


def local(hour: int, minute: int = 0, day: int = 2) -> datetime:
    """A moment on the school's clock (Asia/Ho_Chi_Minh), given in UTC as stored."""
    return datetime(2026, 12, day, hour, minute, tzinfo=HANOI).astimezone(UTC)


def test_an_ordinary_arrival_goes_now() -> None:
    decision = decide(MessageKind.ARRIVED, local(7, 12), GUARDIAN, SCHOOL)
    assert decision.action is Action.DELIVER_NOW and decision.at is None


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        (local(21, 30), local(6, 30, day=3)),  # the first minute of quiet hours
        (local(23, 59), local(6, 30, day=3)),  # before midnight: until tomorrow morning
        (local(0, 0), local(6, 30)),  # after midnight: until this morning
        (local(6, 29), local(6, 30)),
    ],
)
def test_quiet_hours_across_midnight_hold_until_they_end(moment: datetime, until: datetime) -> None:
    decision = decide(MessageKind.LEFT, moment, GUARDIAN, SCHOOL)
    assert decision.action is Action.HOLD_UNTIL
    assert decision.at == until and decision.at.tzinfo is UTC
    assert decision.reason == "quiet hours 21:30–06:30"


@pytest.mark.parametrize("moment", [local(6, 30), local(21, 29), local(12, 0)])
def test_outside_quiet_hours_is_now(moment: datetime) -> None:
    assert decide(MessageKind.LEFT, moment, GUARDIAN, SCHOOL).action is Action.DELIVER_NOW


def test_quiet_hours_within_one_day() -> None:
    nap = GuardianPreferences(
        channels=["push"], quiet_hours=QuietHours(start=time(12), end=time(13, 30))
    )
    assert decide(MessageKind.LEFT, local(11, 59), nap, SCHOOL).action is Action.DELIVER_NOW
    held = decide(MessageKind.LEFT, local(12, 0), nap, SCHOOL)
    assert (held.action, held.at) == (Action.HOLD_UNTIL, local(13, 30))
    assert decide(MessageKind.LEFT, local(13, 30), nap, SCHOOL).action is Action.DELIVER_NOW


def test_quiet_hours_follow_the_schools_zone() -> None:
    bangkok_is_same_offset = SchoolPolicy(zone="Asia/Bangkok")
    tokyo = SchoolPolicy(zone="Asia/Tokyo")  # 22:00 in Hà Nội is 00:00 in Tokyo
    moment = local(20, 0)  # 22:00 in Tokyo
    assert decide(MessageKind.LEFT, moment, GUARDIAN, bangkok_is_same_offset).action is (
        Action.DELIVER_NOW
    )
    assert decide(MessageKind.LEFT, moment, GUARDIAN, tokyo).action is Action.HOLD_UNTIL


def test_school_switch_off_skips_for_everyone() -> None:
    school = SchoolPolicy(disabled_kinds=frozenset({MessageKind.LEFT}))
    decision = decide(MessageKind.LEFT, local(16, 35), GUARDIAN, school)
    assert decision.action is Action.SKIP and "school" in decision.reason
    assert decide(MessageKind.ARRIVED, local(7, 0), GUARDIAN, school).action is Action.DELIVER_NOW


def test_school_switch_wins_over_digest_and_quiet_hours() -> None:
    guardian = GuardianPreferences(channels=["sms"], digest=True, quiet_hours=NIGHT)
    school = SchoolPolicy(disabled_kinds=frozenset({MessageKind.LATE}))
    assert decide(MessageKind.LATE, local(23, 0), guardian, school).action is Action.SKIP


def test_kinds_the_guardian_did_not_choose_are_skipped() -> None:
    guardian = GuardianPreferences(channels=["sms"], kinds=frozenset({MessageKind.ABSENT}))
    decision = decide(MessageKind.ARRIVED, local(7, 0), guardian, SCHOOL)
    assert decision.action is Action.SKIP and "guardian" in decision.reason
    assert decide(MessageKind.ABSENT, local(8, 0), guardian, SCHOOL).action is Action.DELIVER_NOW


def test_a_guardian_without_channels_is_skipped() -> None:
    decision = decide(MessageKind.ARRIVED, local(7, 0), GuardianPreferences(), SCHOOL)
    assert (decision.action, decision.reason) == (Action.SKIP, "the guardian has no channel")


def test_digest_is_due_at_the_chosen_time_today_or_tomorrow() -> None:
    guardian = GuardianPreferences(channels=["email"], digest=True, digest_at=time(18, 0))
    today = decide(MessageKind.ARRIVED, local(7, 12), guardian, SCHOOL)
    assert (today.action, today.at) == (Action.DIGEST, local(18, 0))
    late = decide(MessageKind.LEFT, local(18, 0), guardian, SCHOOL)
    assert late.at == local(18, 0, day=3)


def test_a_digest_due_in_quiet_hours_waits_for_them_to_end() -> None:
    guardian = GuardianPreferences(
        channels=["email"], digest=True, digest_at=time(22, 0), quiet_hours=NIGHT
    )
    decision = decide(MessageKind.ARRIVED, local(7, 12), guardian, SCHOOL)
    assert (decision.action, decision.at) == (Action.DIGEST, local(6, 30, day=3))


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(MessageKind.ARRIVED, datetime(2026, 12, 2, 7, 0), GUARDIAN, SCHOOL)


@pytest.mark.parametrize(
    ("model", "data", "complaint"),
    [
        (QuietHours, {"start": "22:00", "end": "22:00"}, "same time"),
        (GuardianPreferences, {"channels": ["sms", "sms"]}, "listed twice"),
        (SchoolPolicy, {"zone": "Mars/Olympus"}, "zone"),
    ],
)
def test_bad_preferences_are_refused(model: type, data: dict, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        model.model_validate(data)
