"""Each stage of the gate loop times itself, for telemetry and benchmarks.

A fixed-size ring per stage keeps the last few hundred durations; p50/p95 come from it on demand,
so measuring costs two clock reads and an array store on the hot path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np


class StageTimes:
    """Durations of named stages (seconds), the last ``window`` of each."""

    def __init__(self, window: int = 512) -> None:
        self._window = window
        self._rings: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            ring = self._rings.get(stage)
            if ring is None:
                ring = self._rings[stage] = np.zeros(self._window)
                self._counts[stage] = 0
            ring[self._counts[stage] % self._window] = seconds
            self._counts[stage] += 1

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(stage, time.perf_counter() - start)

    def summary_ms(self) -> dict[str, tuple[float, float]]:
        """``{stage: (p50_ms, p95_ms)}`` over each stage's recent durations."""
        with self._lock:
            out = {}
            for stage, ring in self._rings.items():
                values = ring[: min(self._counts[stage], self._window)] * 1000.0
                p50, p95 = np.percentile(values, [50, 95])
                out[stage] = (round(float(p50), 3), round(float(p95), 3))
            return out
