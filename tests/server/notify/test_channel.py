"""The shared pieces of the channel interface."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.notify.channel import Delivery, Outcome, provider_reference
from server.notify.channels.http_gateway import classify_status, parse_retry_after


def test_delivery_constructors() -> None:
    assert Delivery.accepted("id-1") == Delivery(Outcome.ACCEPTED, "", "id-1")
    assert Delivery.temporary("busy", 5).retry_after_s == 5
    gone = Delivery.permanent("410", subscription_gone=True)
    assert gone.outcome is Outcome.PERMANENT and gone.subscription_gone


def test_provider_reference_keeps_a_short_safe_key_and_hashes_the_rest() -> None:
    assert provider_reference("st-1:2026-12-02:arrived", 50) == "st-1:2026-12-02:arrived"
    long_key = "x" * 60
    assert provider_reference(long_key, 50) == provider_reference(long_key, 50)
    assert len(provider_reference(long_key, 50)) == 50
    assert provider_reference("có dấu", 50) != "có dấu"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("Wed, 02 Dec 2026 00:02:00 GMT", 120.0),
        ("Wed, 02 Dec 2026 00:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(value: str | None, seconds: float | None) -> None:
    now = datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now) == seconds


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (408, Outcome.TEMPORARY),
        (429, Outcome.TEMPORARY),
        (500, Outcome.TEMPORARY),
        (503, Outcome.TEMPORARY),
        (401, Outcome.PERMANENT),
        (403, Outcome.PERMANENT),
        (200, None),
        (400, None),
        (404, None),
    ],
)
def test_statuses_every_provider_agrees_on(status: int, outcome: Outcome | None) -> None:
    verdict = classify_status(status, None)
    assert (verdict.outcome if verdict else None) is outcome
