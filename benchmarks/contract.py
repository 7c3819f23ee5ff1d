"""``campusgate bench contract``: the cost of checking each MQTT message against the contract.

Every event the server ingests passes :func:`broker.codec.decode` (topic parse, size limit,
strict schema, topic/payload agreement). The baseline is ``json.loads`` of the same bytes, the
least any consumer must do, so the ratio says what strictness costs per message.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

from benchmarks.stats import peak_rss_mb, percentiles_ms
from broker.codec import decode, encode
from broker.payloads import Event, utc_now


def _messages(count: int) -> list[tuple[str, bytes]]:
    start = utc_now()
    out = []
    for i in range(count):
        device = f"gate-{i % 200}"
        event = Event(
            event_id=uuid.uuid4(),
            kind="face+card",
            ts=start + timedelta(milliseconds=i),
            site=f"school-{i % 50}",
            device=device,
            direction="in",
            student_id=f"HS{i:06d}",
            score=0.87,
            card_uid="04A1B2C3D4E5F6",
            track_id=i,
            quality=0.9,
            model_pack="dlib-r29-mtcnn",
            gallery_version=7,
            latency_ms=140.0,
        )
        out.append((f"cg/v1/school-{i % 50}/{device}/events", encode(event)))
    return out


def _timed(fn, messages: list[tuple[str, bytes]]) -> tuple[list[float], float]:
    per_message = []
    clock = time.perf_counter
    begin = clock()
    for topic, payload in messages:
        t0 = clock()
        fn(topic, payload)
        per_message.append(clock() - t0)
    return per_message, clock() - begin


def run(count: int = 20_000) -> dict:
    """Decode ``count`` realistic events both ways and return the figures."""
    messages = _messages(count)
    _timed(decode, messages[:500])  # warm up both paths
    strict, strict_total = _timed(decode, messages)
    baseline, baseline_total = _timed(lambda _t, p: json.loads(p), messages)
    strict_ms = percentiles_ms(strict)
    baseline_ms = percentiles_ms(baseline)
    return {
        "benchmark": "contract",
        "messages": count,
        "payload_bytes_mean": round(sum(len(p) for _, p in messages) / count, 1),
        "decode_ms": strict_ms,
        "decode_per_s": round(count / strict_total),
        "baseline": "json.loads",
        "baseline_ms": baseline_ms,
        "baseline_per_s": round(count / baseline_total),
        "ratio_p50": round(strict_ms["p50"] / baseline_ms["p50"], 2),
        "rss_mb": peak_rss_mb(),
    }
