"""Hostile bytes at the system's two raw inputs: MQTT payloads and card readers' serial lines.

Whatever arrives, the MQTT decoder answers a valid message or :class:`PayloadError` (which ingest
counts and acknowledges), never another exception; card readers turn any bytes into frames, or
into a clear error, without crashing, hanging or growing a buffer. The frame decoders' own
properties (round trips, resynchronisation) are in tests/edge/cards; these are the
attacker's-eye cases across the whole input.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.codec import MAX_PAYLOAD_BYTES, Decoded, PayloadError, decode, encode
from broker.payloads import Event, utc_now
from broker.topics import Channel, device_topic, gallery_topic
from edge.cards.line_reader import MAX_LINE, LineReader
from edge.cards.pn532 import PN532, CardError, PN532Options
from edge.cards.reader import ReaderError
from firmware_tools.emulators.pty_pair import PtyPair

TOPICS = [
    *(device_topic(channel, "school-a", "gate-1") for channel in Channel if channel.per_device),
    gallery_topic("school-a"),
]
VALID = json.loads(
    encode(
        Event(
            event_id=uuid.uuid4(),
            kind="face",
            ts=utc_now(),
            site="school-a",
            device="gate-1",
            direction="in",
            student_id="HS1",
            score=0.9,
            track_id=1,
            model_pack="dlib-r29-mtcnn",
            latency_ms=40.0,
        )
    )
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


def _decodes_or_refuses(topic: str, payload: bytes | str) -> None:
    try:
        result = decode(topic, payload)
    except PayloadError as exc:
        assert str(exc), "a refusal must say why"
    else:
        assert isinstance(result, Decoded)


@settings(max_examples=400)
@given(
    topic=st.one_of(st.sampled_from(TOPICS), st.text(max_size=80)),
    payload=st.one_of(st.binary(max_size=2000), st.text(max_size=500)),
)
def test_any_topic_and_bytes_decode_or_are_refused_with_a_reason(topic, payload) -> None:
    _decodes_or_refuses(topic, payload)


@settings(max_examples=400)
@given(
    topic=st.sampled_from(TOPICS),
    changes=st.dictionaries(st.sampled_from([*VALID, "extra"]), json_values, max_size=4),
    drop=st.sets(st.sampled_from(list(VALID)), max_size=3),
)
def test_an_event_with_fields_changed_decodes_or_is_refused(topic, changes, drop) -> None:
    """Near-valid payloads reach deepest into validation: wrong types, NaN, huge numbers,
    nested junk in any field, fields missing."""
    body = {k: v for k, v in VALID.items() if k not in drop} | changes
    _decodes_or_refuses(topic, json.dumps(body, allow_nan=True))


def test_oversized_and_deeply_nested_payloads_are_refused() -> None:
    topic = TOPICS[0]
    with pytest.raises(PayloadError, match="limit"):
        decode(topic, b"{" + b" " * MAX_PAYLOAD_BYTES + b"}")
    with pytest.raises(PayloadError):
        decode(topic, b"[" * 20_000 + b"]" * 20_000)
    with pytest.raises(PayloadError):
        decode(topic, json.dumps(VALID | {"student_id": "\ud800"}))  # a lone surrogate


@settings(max_examples=300)
@given(chunks=st.lists(st.binary(max_size=400), max_size=10))
def test_line_reader_turns_any_bytes_into_uids_or_counted_bad_lines(chunks) -> None:
    reader = LineReader("/dev/null")
    for chunk in chunks:
        for sighting in reader._decode(chunk):
            assert 8 <= len(sighting.uid) <= 20 and sighting.uid == sighting.uid.upper()
        assert len(reader._buffer) <= MAX_LINE  # a line without end cannot eat the memory


FAST = PN532Options(
    ack_timeout_s=0.05, response_timeout_s=0.2, open_timeout_s=0.2, poll_interval_s=0.02
)


@settings(max_examples=6, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(min_size=1, max_size=300))
def test_pn532_on_a_line_of_garbage_fails_with_a_clear_error_not_a_crash_or_hang(garbage) -> None:
    """A chip that answers every command with noise (a wrong device on the port, a failing
    level shifter): opening the reader gives up with a ReaderError/CardError in bounded time."""
    line = PtyPair()
    stop = threading.Event()

    def babble() -> None:
        while not stop.is_set():
            if line.read(0.01):
                line.write(garbage)

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    try:
        with pytest.raises((ReaderError, CardError)) as refused, PN532(line.path, options=FAST):
            pass
        assert str(refused.value)
    finally:
        stop.set()
        thread.join(2)
        line.close()
