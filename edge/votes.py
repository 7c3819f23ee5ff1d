"""Deciding who a track is: votes from a few embeddings of one person walking through the gate.

A pass lasts a second or two and yields a handful of faces of varying quality. Each embedded face
casts a vote (a gallery match or "unknown"); the track is decided as soon as the evidence is
strong — one match well above the threshold and clear of the runner-up, or two agreeing
matches — or as soon as ``unknown_after`` faces matched nobody, and otherwise after
``max_tries`` embeddings, when a student needs more matches than unknown votes. The bar is
higher than a single threshold crossing because a gate sees
thousands of strangers' faces (parents, visitors) for every false claim a school will forgive.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Vote:
    """One embedded face's gallery result."""

    person_id: str | None
    score: float
    runner_up_score: float
    quality: float
    captured_at: float
    wall_time: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Who the track is (None: not in the gallery), and the frame that decided it."""

    person_id: str | None
    score: float
    quality: float
    captured_at: float
    wall_time: float
    votes: int


@dataclass
class TrackVotes:
    """The evidence gathered for one track so far."""

    track_id: int
    first_seen: float = 0.0
    best_quality: float = -1.0
    tries: int = 0
    in_flight: bool = False
    votes: list[Vote] = field(default_factory=list)
    decision: Decision | None = None

    def wants(self, quality: float, max_tries: int, improvement: float = 1.1) -> bool:
        """Whether a face of ``quality`` is worth embedding for this track now: undecided, no
        embedding in flight, tries left, and clearly better than the best face tried so far."""
        return (
            self.decision is None
            and not self.in_flight
            and self.tries < max_tries
            and (self.tries == 0 or quality > self.best_quality * improvement)
        )


@dataclass(frozen=True, slots=True)
class VotePolicy:
    """Thresholds of the decision; the threshold is the pack's cosine similarity."""

    threshold: float
    confident_margin: float = 0.03
    runner_up_gap: float = 0.02
    max_tries: int = 4
    unknown_after: int = 3  # votes without a single match: a stranger, say so without waiting


def add_vote(state: TrackVotes, vote: Vote, policy: VotePolicy) -> Decision | None:
    """Record ``vote``; return the track's decision if this vote settles it."""
    state.votes.append(vote)
    state.tries += 1
    state.best_quality = max(state.best_quality, vote.quality)
    if state.decision is not None:
        return None
    known = [v for v in state.votes if v.person_id is not None and v.score >= policy.threshold]
    if vote.person_id is not None and vote.score >= policy.threshold:
        confident = vote.score >= policy.threshold + policy.confident_margin
        clear = vote.score - vote.runner_up_score >= policy.runner_up_gap
        agreeing = [v for v in known if v.person_id == vote.person_id]
        if (confident and clear) or len(agreeing) >= 2:
            state.decision = _decide(vote.person_id, agreeing)
            return state.decision
    unknown_only = not known and len(state.votes) >= policy.unknown_after
    if state.tries >= policy.max_tries or unknown_only:
        state.decision = final_decision(state, policy)
        return state.decision
    return None


def final_decision(state: TrackVotes, policy: VotePolicy) -> Decision | None:
    """The decision when no more faces will come (tries used up or the track ended).

    The most-voted person wins if they have more matches than the unknown votes; otherwise the
    track is an unknown face. A track with no votes at all has no decision.
    """
    if not state.votes:
        return None
    tally: dict[str, list[Vote]] = {}
    for vote in state.votes:
        if vote.person_id is not None and vote.score >= policy.threshold:
            tally.setdefault(vote.person_id, []).append(vote)
    unknown = len(state.votes) - sum(len(v) for v in tally.values())
    if tally:
        person, votes = max(tally.items(), key=lambda kv: (len(kv[1]), max(v.score for v in kv[1])))
        if len(votes) > unknown:
            return _decide(person, votes)
    best = max(state.votes, key=lambda v: v.quality)
    return Decision(
        None, best.score, best.quality, best.captured_at, best.wall_time, len(state.votes)
    )


def _decide(person_id: str, votes: list[Vote]) -> Decision:
    top = max(votes, key=lambda v: v.score)
    last = max(votes, key=lambda v: v.captured_at)
    return Decision(
        person_id,
        top.score,
        max(v.quality for v in votes),
        last.captured_at,
        last.wall_time,
        len(votes),
    )
