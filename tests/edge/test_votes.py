"""A track is named on strong evidence only, and otherwise called unknown."""

from __future__ import annotations

from edge.votes import TrackVotes, Vote, VotePolicy, add_vote, final_decision

POLICY = VotePolicy(threshold=0.9, confident_margin=0.03, runner_up_gap=0.02, max_tries=4)


def vote(person: str | None, score: float, runner_up: float = 0.5, t: float = 0.0) -> Vote:
    return Vote(person, score, runner_up, quality=0.8, captured_at=t, wall_time=1000 + t)


def test_one_confident_clear_match_decides_at_once() -> None:
    state = TrackVotes(1)
    decision = add_vote(state, vote("HS1", 0.95, t=1.0), POLICY)
    assert decision is not None and decision.person_id == "HS1" and decision.captured_at == 1.0


def test_a_close_runner_up_needs_a_second_agreeing_match() -> None:
    state = TrackVotes(1)
    assert add_vote(state, vote("HS1", 0.95, runner_up=0.94), POLICY) is None
    assert add_vote(state, vote("HS2", 0.91, runner_up=0.90), POLICY) is None
    decision = add_vote(state, vote("HS1", 0.905, runner_up=0.80, t=2.0), POLICY)
    assert decision is not None and decision.person_id == "HS1" and decision.votes == 2


def test_unknown_after_the_tries_when_matches_do_not_outnumber_unknowns() -> None:
    state = TrackVotes(1)
    results = [
        add_vote(state, v, POLICY)
        for v in (
            vote(None, 0.6),
            vote("HS1", 0.905, runner_up=0.9),
            vote(None, 0.7),
            vote(None, 0.5),
        )
    ]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3].person_id is None


def test_track_ending_early_uses_what_it_has() -> None:
    assert final_decision(TrackVotes(1), POLICY) is None
    state = TrackVotes(1)
    add_vote(state, vote("HS1", 0.91, runner_up=0.905), POLICY)
    decision = final_decision(state, POLICY)
    assert decision is not None and decision.person_id == "HS1"


def test_wants_only_better_faces_while_undecided() -> None:
    state = TrackVotes(1)
    assert state.wants(0.5, max_tries=4)
    add_vote(state, vote(None, 0.5), POLICY)
    state.best_quality = 0.5
    assert not state.wants(0.52, max_tries=4) and state.wants(0.6, max_tries=4)
    state.in_flight = True
    assert not state.wants(0.9, max_tries=4)
