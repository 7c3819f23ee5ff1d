"""The re-send schedule of events without a receipt, on explicit (monotonic) times."""

from __future__ import annotations

import pytest

from edge.resend import ResendSchedule


def test_the_wait_doubles_per_attempt_up_to_the_cap() -> None:
    schedule = ResendSchedule(first_s=30.0, max_s=600.0)
    waits = [schedule.timeout_s(attempts) for attempts in range(1, 8)]
    assert waits == [30.0, 60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    assert schedule.timeout_s(10_000) == 600.0  # a gate that waited for weeks


def test_an_event_is_due_only_once_its_wait_has_passed() -> None:
    schedule = ResendSchedule(first_s=30.0, max_s=600.0)
    schedule.wait(seq=7, attempts=1, now=100.0)
    schedule.wait(seq=8, attempts=2, now=100.0)

    assert schedule.seconds_until_due(100.0) == 30.0
    assert schedule.take(129.9, limit=10) == []
    assert schedule.take(130.0, limit=10) == [7]
    assert schedule.seconds_until_due(130.0) == 30.0
    assert schedule.take(160.0, limit=10) == [8]
    assert schedule.seconds_until_due(160.0) is None
    assert len(schedule) == 0


def test_due_events_go_oldest_first_within_the_limit() -> None:
    schedule = ResendSchedule(first_s=1.0, max_s=600.0)
    # Seq 3 was acknowledged later than 9 and 5, but it is the oldest event.
    schedule.wait(seq=9, attempts=1, now=0.0)
    schedule.wait(seq=5, attempts=1, now=0.5)
    schedule.wait(seq=3, attempts=1, now=0.9)

    assert schedule.seconds_until_due(10.0) == 0.0
    assert schedule.take(10.0, limit=2) == [3, 5]
    assert schedule.take(10.0, limit=2) == [9]


def test_a_receipt_takes_an_event_off_the_schedule() -> None:
    schedule = ResendSchedule(first_s=1.0, max_s=600.0)
    for seq in (1, 2, 3):
        schedule.wait(seq=seq, attempts=1, now=0.0)
    schedule.forget([2, 42])  # 42 was never waiting: ignored

    assert len(schedule) == 2
    assert schedule.take(5.0, limit=10) == [1, 3]


def test_after_a_reconnect_every_waiting_event_is_due_at_once() -> None:
    schedule = ResendSchedule(first_s=30.0, max_s=600.0)
    schedule.wait(seq=4, attempts=3, now=0.0)
    schedule.wait(seq=2, attempts=1, now=0.0)
    schedule.forget([4])
    schedule.wait(seq=6, attempts=5, now=0.0)

    schedule.all_due(now=1.0)

    assert schedule.seconds_until_due(1.0) == 0.0
    assert schedule.take(1.0, limit=10) == [2, 6]
    # Published again, acknowledged again: back to waiting, longer this time.
    schedule.wait(seq=2, attempts=2, now=2.0)
    assert schedule.seconds_until_due(2.0) == 60.0


def test_first_wait_must_not_exceed_the_cap() -> None:
    with pytest.raises(ValueError, match="first_s <= max_s"):
        ResendSchedule(first_s=60.0, max_s=30.0)
