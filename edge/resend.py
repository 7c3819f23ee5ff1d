"""When to publish again an event the broker took (PUBACK) but the server has not confirmed.

A PUBACK says only that the broker has the event; the broker can still drop it (Mosquitto forgets
the ingest workers' shared subscriptions across a restart), so the gate keeps every event until
the server's receipt (:class:`broker.payloads.Receipt`) and publishes it again if none comes:
``first_s`` after the first PUBACK, twice as long after each further one, at most ``max_s``; and
at once after a reconnect (:meth:`ResendSchedule.all_due`). Among the due events the oldest
(lowest outbox seq) goes first.

The schedule lives in memory and runs on monotonic time, since the gate's wall clock may be
stepped (see :mod:`edge.clock`); a restarted gate publishes everything its outbox holds anyway.
Both lookups are heaps, so a backlog of 100,000 events waiting for the server costs
O(log n) per event, not a scan per send.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

_MAX_DOUBLINGS = 32  # beyond this any sane max_s is reached; keeps 2**n a small number


class ResendSchedule:
    """Events (by outbox seq) waiting for their receipt, each with the time it is due again.

    Not thread-safe: the link's sender owns it, behind the link's send lock.
    """

    def __init__(self, first_s: float, max_s: float) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"need 0 < first_s <= max_s, not {first_s} and {max_s}")
        self.first_s = first_s
        self.max_s = max_s
        self._due_at: dict[int, float] = {}  # seq -> monotonic time it is due; the truth
        self._timers: list[tuple[float, int]] = []  # heap; entries not in _due_at are stale
        self._due: list[int] = []  # heap of seqs whose time has come; stale ones skipped

    def __len__(self) -> int:
        """How many events wait for their receipt (not counting those in flight again)."""
        return len(self._due_at)

    def timeout_s(self, attempts: int) -> float:
        """How long to wait for the receipt after the ``attempts``-th PUBACK of an event."""
        doublings = min(max(attempts - 1, 0), _MAX_DOUBLINGS)
        return min(self.first_s * 2**doublings, self.max_s)

    def wait(self, seq: int, attempts: int, now: float) -> None:
        """The broker acknowledged ``seq`` for the ``attempts``-th time at ``now``."""
        due = now + self.timeout_s(attempts)
        self._due_at[seq] = due
        heapq.heappush(self._timers, (due, seq))

    def forget(self, seqs: Iterable[int]) -> None:
        """Receipts came for these; unknown seqs are ignored."""
        for seq in seqs:
            self._due_at.pop(seq, None)

    def all_due(self, now: float) -> None:
        """After a reconnect: every waiting event is due now (the broker may have lost them)."""
        for seq in self._due_at:
            self._due_at[seq] = now
        self._timers = []
        self._due = sorted(self._due_at)  # a sorted list is a heap

    def take(self, now: float, limit: int) -> list[int]:
        """Up to ``limit`` due seqs, oldest first; they leave the schedule (the caller publishes
        them again, and their next PUBACK puts them back with :meth:`wait`)."""
        self._ripen(now)
        taken: list[int] = []
        while self._due and len(taken) < limit:
            seq = heapq.heappop(self._due)
            if self._due_at.pop(seq, None) is not None:
                taken.append(seq)
        return taken

    def seconds_until_due(self, now: float) -> float | None:
        """0 when something is due, else how long until the next is; None when nothing waits."""
        self._ripen(now)
        while self._due and self._due[0] not in self._due_at:
            heapq.heappop(self._due)
        if self._due:
            return 0.0
        return self._timers[0][0] - now if self._timers else None

    def _ripen(self, now: float) -> None:
        """Move the events whose time has come from the timers to the due heap, dropping stale
        timer entries (receipted, or superseded) on the way."""
        timers = self._timers
        while timers and (timers[0][0] <= now or self._due_at.get(timers[0][1]) != timers[0][0]):
            due, seq = heapq.heappop(timers)
            if self._due_at.get(seq) == due:
                heapq.heappush(self._due, seq)
