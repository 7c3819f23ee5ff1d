"""Card + face fusion under the gate's policy, on a clock the tests move by hand."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest

from broker.payloads import utc_now
from edge.agent import outcome_event
from edge.cards.fusion import CardFaceFusion, Outcome
from edge.cards.reader import Tap
from edge.loop import Pass

WINDOW = 5.0
OWNERS = {"04A1B2C3": "HS0001", "04D5E6F7": "HS0002"}


@dataclass(frozen=True)
class Face:
    person_id: str | None
    captured_at: float


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fusion(clock: Clock) -> CardFaceFusion[Face]:
    return CardFaceFusion(OWNERS.get, window_s=WINDOW, require_face=True, clock=clock)


def tap(clock: Clock, uid: str = "04A1B2C3") -> Tap:
    return Tap(uid, "iso14443a", clock.now)


def face(clock: Clock, person_id: str | None = "HS0001") -> Face:
    return Face(person_id, clock.now)


def summary(outcomes: list[Outcome]) -> list[tuple]:
    return [(o.kind, o.student_id, o.face_check) for o in outcomes]


# --- without require_face --------------------------------------------------------------------
def test_without_the_policy_a_known_card_is_its_student_s_card_event_at_once(clock) -> None:
    fusion = CardFaceFusion(OWNERS.get, clock=clock)
    card = tap(clock)

    [outcome] = fusion.card(card)

    assert (outcome.kind, outcome.student_id, outcome.tap, outcome.face_check) == (
        "card",
        "HS0001",
        card,
        None,
    )
    assert outcome.accepted


def test_without_the_policy_an_unknown_card_is_reported_without_a_student(clock) -> None:
    fusion = CardFaceFusion(OWNERS.get, clock=clock)

    [outcome] = fusion.card(tap(clock, "DEADBEEF"))

    assert summary([outcome]) == [("card", None, None)] and outcome.tap.uid == "DEADBEEF"
    assert not outcome.accepted


def test_without_the_policy_faces_pass_straight_through(clock) -> None:
    fusion = CardFaceFusion(OWNERS.get, clock=clock)
    seen = face(clock)

    assert fusion.face(seen) == [Outcome("face", "HS0001", face=seen)]
    assert fusion.tick() == [] and fusion.flush() == []


# --- with require_face: the owner's face ----------------------------------------------------
def test_the_owner_s_face_after_the_tap_is_one_face_and_card_event(fusion, clock) -> None:
    card = tap(clock)
    assert fusion.card(card) == []
    clock.now += 2.0
    seen = face(clock)

    [outcome] = fusion.face(seen)

    assert outcome == Outcome("face+card", "HS0001", tap=card, face=seen, face_check="match")
    assert outcome.accepted
    clock.now += 2 * WINDOW
    assert fusion.tick() == []  # neither the face nor the card again


def test_the_owner_s_face_before_the_tap_counts_and_is_not_sent_twice(fusion, clock) -> None:
    seen = face(clock)
    assert fusion.face(seen) == []  # held: a tap may still claim it
    clock.now += 3.0
    card = tap(clock)

    [outcome] = fusion.card(card)

    assert outcome == Outcome("face+card", "HS0001", tap=card, face=seen, face_check="match")
    clock.now += 2 * WINDOW
    assert fusion.tick() == []


@pytest.mark.parametrize("offset", [-WINDOW, WINDOW])
def test_a_face_exactly_at_the_window_s_edge_still_matches(fusion, clock, offset) -> None:
    card = Tap("04A1B2C3", "iso14443a", clock.now - min(offset, 0))
    seen = Face("HS0001", card.at + offset)
    clock.now = max(card.at, seen.captured_at)

    outcomes = fusion.face(seen) + fusion.card(card) if offset < 0 else []
    if offset > 0:
        outcomes = fusion.card(card) + fusion.face(seen)

    assert summary(outcomes) == [("face+card", "HS0001", "match")]


def test_a_face_just_before_the_window_is_its_own_event_and_the_card_has_none(
    fusion, clock
) -> None:
    assert fusion.face(face(clock)) == []
    clock.now += WINDOW + 0.01

    assert summary(fusion.card(tap(clock))) == [("face", "HS0001", None)]  # released, unclaimed
    clock.now += WINDOW + 0.01
    assert summary(fusion.tick()) == [("card", "HS0001", "missing")]


def test_a_face_just_after_the_window_is_too_late(fusion, clock) -> None:
    fusion.card(tap(clock))
    clock.now += WINDOW + 0.01

    outcomes = fusion.face(face(clock))

    assert summary(outcomes) == [("card", "HS0001", "missing")]
    clock.now += WINDOW + 0.01
    assert summary(fusion.tick()) == [("face", "HS0001", None)]


# --- with require_face: no face, or someone else's -------------------------------------------
def test_no_face_is_missing_when_the_window_ends_and_not_a_moment_before(fusion, clock) -> None:
    card = tap(clock)
    fusion.card(card)

    clock.now = card.at + WINDOW
    assert fusion.tick() == []
    clock.now += 0.001
    [outcome] = fusion.tick()

    assert outcome == Outcome("card", "HS0001", tap=card, face_check="missing")
    assert not outcome.accepted


@pytest.mark.parametrize("other", ["HS0002", None])
def test_another_face_alone_is_a_mismatch_and_still_its_own_event(fusion, clock, other) -> None:
    fusion.card(tap(clock))
    clock.now += 1.0
    assert fusion.face(face(clock, other)) == []  # the verdict waits for the window's end

    clock.now += WINDOW + 0.01

    outcomes = fusion.tick()
    assert sorted(summary(outcomes), key=str) == sorted(
        [("card", "HS0001", "mismatch"), ("face", other, None)], key=str
    )
    assert not next(o for o in outcomes if o.kind == "card").accepted


def test_someone_else_before_the_tap_is_a_mismatch_too(fusion, clock) -> None:
    fusion.face(face(clock, "HS0002"))
    clock.now += 1.0
    fusion.card(tap(clock))

    clock.now += WINDOW + 0.01

    assert ("card", "HS0001", "mismatch") in summary(fusion.tick())


def test_the_owner_seen_after_someone_else_is_still_a_match(fusion, clock) -> None:
    fusion.card(tap(clock))
    clock.now += 1.0
    fusion.face(face(clock, "HS0002"))
    clock.now += 1.0

    assert summary(fusion.face(face(clock))) == [("face+card", "HS0001", "match")]
    clock.now += WINDOW
    assert summary(fusion.tick()) == [("face", "HS0002", None)]


# --- several taps --------------------------------------------------------------------------
def test_two_students_tapping_in_turn_each_get_their_own_face(fusion, clock) -> None:
    fusion.card(tap(clock, "04A1B2C3"))
    clock.now += 1.0
    fusion.card(tap(clock, "04D5E6F7"))
    clock.now += 1.0

    second = fusion.face(face(clock, "HS0002"))
    first = fusion.face(face(clock, "HS0001"))

    assert summary(second + first) == [
        ("face+card", "HS0002", "match"),
        ("face+card", "HS0001", "match"),
    ]


def test_a_face_claimed_by_its_own_tap_is_no_evidence_against_another_card(fusion, clock):
    fusion.card(tap(clock, "04A1B2C3"))  # HS0001 taps and never looks up
    clock.now += 1.0
    fusion.face(face(clock, "HS0002"))  # HS0002 is seen, then taps
    clock.now += 1.0
    assert summary(fusion.card(tap(clock, "04D5E6F7"))) == [("face+card", "HS0002", "match")]

    clock.now += WINDOW

    assert summary(fusion.tick()) == [("card", "HS0001", "missing")]


def test_the_same_card_tapped_again_in_its_window_is_one_tap(fusion, clock) -> None:
    fusion.card(tap(clock))
    clock.now += 1.0
    assert fusion.card(tap(clock)) == []

    clock.now += WINDOW + 0.01

    assert summary(fusion.tick()) == [("card", "HS0001", "missing")]


def test_an_unknown_card_is_reported_at_once_even_under_the_policy(fusion, clock) -> None:
    [outcome] = fusion.card(tap(clock, "DEADBEEF"))

    assert summary([outcome]) == [("card", None, None)] and not outcome.accepted


# --- policy changes and shutdown -------------------------------------------------------------
def test_switching_the_policy_off_releases_what_was_waiting(fusion, clock) -> None:
    fusion.card(tap(clock))
    fusion.face(face(clock, "HS0002"))

    fusion.require_face = False

    assert sorted(summary(fusion.tick()), key=str) == sorted(
        [("card", "HS0001", None), ("face", "HS0002", None)], key=str
    )


def test_flush_decides_everything_still_pending(fusion, clock) -> None:
    fusion.card(tap(clock))
    fusion.face(face(clock, None))

    outcomes = fusion.flush()

    assert sorted(summary(outcomes), key=str) == sorted(
        [("card", "HS0001", "mismatch"), ("face", None, None)], key=str
    )
    assert fusion.flush() == []


def test_a_window_must_have_a_length() -> None:
    with pytest.raises(ValueError, match="positive"):
        CardFaceFusion(OWNERS.get, window_s=0)


# --- decisions as contract events (edge.agent) ------------------------------------------------
def event_of(outcome: Outcome, now: float):
    return outcome_event(
        outcome,
        site="school-a",
        device="gate-1",
        model_pack="dlib-r29-mtcnn",
        gallery_version=7,
        card_direction="out",
        now=now,
    )


def test_every_kind_of_decision_is_a_valid_contract_event() -> None:
    now = time.monotonic()
    card = Tap("04A1B2C3", "iso14443a", now - 6.0)
    seen = Pass(3, "HS0001", 0.97, 0.8, now - 5.5, time.time() - 5.5, "in", now - 7.0)

    matched = event_of(Outcome("face+card", "HS0001", card, seen, "match"), now)
    missing = event_of(Outcome("card", "HS0001", card, face_check="missing"), now)
    unknown = event_of(Outcome("card", None, Tap("DEADBEEF", "iso14443a", now)), now)
    face_only = event_of(Outcome("face", "HS0001", face=seen), now)

    assert (matched.kind, matched.student_id, matched.card_uid, matched.face_check) == (
        "face+card",
        "HS0001",
        "04A1B2C3",
        "match",
    )
    assert (matched.score, matched.track_id, matched.direction) == (0.97, 3, "in")
    assert matched.latency_ms == pytest.approx(5500, abs=50)  # from the face, the later input
    assert (missing.kind, missing.face_check, missing.score, missing.direction) == (
        "card",
        "missing",
        None,
        "out",
    )
    assert missing.latency_ms == pytest.approx(6000, abs=50)
    assert abs(missing.ts - (utc_now() - timedelta(seconds=6))) < timedelta(seconds=1)
    assert (unknown.student_id, unknown.card_uid, unknown.face_check) == (None, "DEADBEEF", None)
    assert (face_only.kind, face_only.card_uid, face_only.model_pack) == (
        "face",
        None,
        "dlib-r29-mtcnn",
    )
    assert {e.gallery_version for e in (matched, missing, unknown, face_only)} == {7}
