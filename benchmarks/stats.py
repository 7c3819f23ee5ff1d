"""Summary statistics shared by the benchmarks."""

from __future__ import annotations

import resource

import numpy as np


def percentiles_ms(seconds: list[float] | np.ndarray) -> dict[str, float]:
    """p50, p95 and p99 of durations given in seconds, in milliseconds rounded to 4 places."""
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 4), "p95": round(float(p95), 4), "p99": round(float(p99), 4)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
