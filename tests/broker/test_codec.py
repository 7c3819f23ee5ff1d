"""Every payload round-trips; every kind of bad message is refused with the field and reason."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.codec import MAX_PAYLOAD_BYTES, MODELS, PayloadError, decode, encode
from broker.payloads import (
    MAX_RECEIPT_IDS,
    Command,
    CommandAck,
    CrossingLine,
    Event,
    GalleryNotice,
    GateConfig,
    Receipt,
    ScheduleWindow,
    StageTiming,
    Status,
    Telemetry,
)
from broker.topics import ID_PATTERN, Channel, device_topic, gallery_topic

ids = st.from_regex(f"^{ID_PATTERN}$", fullmatch=True).filter(lambda s: not s.endswith("\n"))
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))]),
)
unit = st.floats(0.0, 1.0, allow_nan=False)
count = st.integers(0, 2**31)
ms = st.floats(0.0, 86_400_000.0, allow_nan=False)
pack = st.from_regex(r"^[a-z0-9][a-z0-9._-]{0,20}$", fullmatch=True).filter(lambda s: "\n" not in s)
student = st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$", fullmatch=True).filter(
    lambda s: "\n" not in s
)
card = st.binary(min_size=4, max_size=10).map(lambda b: b.hex().upper())
arg_key = st.from_regex(r"^[a-z][a-z0-9_]{0,10}$", fullmatch=True).filter(lambda s: "\n" not in s)
arg_value = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)
args = st.dictionaries(arg_key, arg_value, max_size=4)


FACE_CHECKS = {
    "face": st.none(),
    "card": st.sampled_from([None, "mismatch", "missing"]),
    "face+card": st.sampled_from([None, "match"]),
}


@st.composite
def events(draw: st.DrawFn, site: str | None = None, device: str | None = None) -> Event:
    kind = draw(st.sampled_from(["face", "card", "face+card"]))
    face = kind != "card"
    return Event(
        event_id=draw(st.uuids()),
        kind=kind,
        ts=draw(aware),
        site=site or draw(ids),
        device=device or draw(ids),
        direction=draw(st.sampled_from(["in", "out"])),
        student_id=draw(st.none() | student),
        score=draw(unit) if face else None,
        card_uid=draw(card) if kind != "face" else None,
        face_check=draw(FACE_CHECKS[kind]),
        track_id=draw(count) if face else None,
        quality=draw(st.none() | unit),
        model_pack=draw(pack) if face else draw(st.none() | pack),
        gallery_version=draw(st.none() | count),
        latency_ms=draw(ms),
    )


statuses = st.builds(
    Status,
    state=st.sampled_from(["online", "offline"]),
    ts=aware,
    site=ids,
    device=ids,
    version=st.sampled_from(["0.1.0", "1.2.3rc1", "2026.11.0+jetson"]),
    model_pack=st.none() | pack,
    gallery_version=st.none() | count,
)
telemetries = st.builds(
    Telemetry,
    ts=aware,
    site=ids,
    device=ids,
    fps_in=st.floats(0, 1000),
    fps_processed=st.floats(0, 1000),
    frames_dropped=count,
    stages=st.dictionaries(
        st.sampled_from(["capture", "motion", "detect", "track", "embed", "match"]),
        st.builds(StageTiming, p50_ms=ms, p95_ms=ms),
        max_size=6,
    ),
    outbox_depth=count,
    cpu_temp_c=st.none() | st.floats(-40, 150),
    mem_rss_mb=st.floats(0, 1e6),
    uptime_s=st.floats(0, 1e9),
)
windows = st.builds(
    ScheduleWindow,
    weekdays=st.lists(st.integers(1, 7), min_size=1, max_size=7),
    start=st.just(time(6, 0)),
    end=st.sampled_from([time(11, 30), time(17, 45)]),
)
configs = st.one_of(
    st.builds(
        GateConfig,
        revision=count,
        ts=aware,
        direction=st.sampled_from(["in", "out"]),
        crossing_line=st.none(),
        match_threshold=unit,
        min_face_px=st.integers(16, 1024),
        detect_fps=st.floats(0.1, 60),
        cooldown_s=st.integers(0, 86_400),
        require_face=st.booleans(),
        schedule=st.lists(windows, max_size=3),
    ),
    st.builds(
        GateConfig,
        revision=count,
        ts=aware,
        direction=st.just("line"),
        crossing_line=st.builds(
            CrossingLine,
            x1=unit,
            y1=unit,
            x2=unit,
            y2=unit,
            in_side=st.sampled_from(["left", "right"]),
        ),
        match_threshold=unit,
        min_face_px=st.integers(16, 1024),
        detect_fps=st.floats(0.1, 60),
        cooldown_s=st.integers(0, 86_400),
        require_face=st.booleans(),
    ),
)
galleries = st.builds(
    GalleryNotice,
    site=ids,
    version=count,
    ts=aware,
    model_pack=pack,
    entries=count,
    url=st.sampled_from(
        ["https://school.example.vn/api/gallery/7", "http://127.0.0.1:8000/api/gallery/7"]
    ),
    sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    size_bytes=count,
    key_id=st.sampled_from(["k1", "gallery-2026"]),
    signature=st.binary(min_size=64, max_size=64).map(
        lambda b: __import__("base64").b64encode(b).decode()
    ),
)
commands = st.builds(
    Command,
    cmd_id=st.uuids(),
    ts=aware,
    name=st.sampled_from(["reload", "snapshot", "test-beep"]),
    args=args,
    expires_at=st.none() | aware,
)
acks = st.builds(
    CommandAck,
    cmd_id=st.uuids(),
    ts=aware,
    site=ids,
    device=ids,
    ok=st.booleans(),
    detail=st.text(max_size=100),
    result=args,
)

receipts = st.builds(
    Receipt,
    ts=aware,
    event_ids=st.lists(st.uuids(), min_size=1, max_size=MAX_RECEIPT_IDS),
)


def _topic_for(channel: Channel, message) -> str:
    if channel is Channel.GALLERY:
        return gallery_topic(message.site)
    site = getattr(message, "site", "school-a")
    device = getattr(message, "device", "gate-1")
    return device_topic(channel, site, device)


any_message = st.one_of(
    events().map(lambda m: (Channel.EVENTS, m)),
    statuses.map(lambda m: (Channel.STATUS, m)),
    telemetries.map(lambda m: (Channel.TELEMETRY, m)),
    configs.map(lambda m: (Channel.CONFIG, m)),
    galleries.map(lambda m: (Channel.GALLERY, m)),
    commands.map(lambda m: (Channel.CMD, m)),
    acks.map(lambda m: (Channel.ACK, m)),
    receipts.map(lambda m: (Channel.STORED, m)),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(item=any_message)
def test_every_payload_round_trips(item) -> None:
    channel, message = item
    decoded = decode(_topic_for(channel, message), encode(message))
    assert decoded.message == message
    assert decoded.topic.channel is channel
    assert json.loads(encode(message))["schema_version"] == 1


def test_every_channel_has_a_model_and_a_strategy() -> None:
    assert set(MODELS) == set(Channel)


def _valid_event_dict() -> dict:
    event = Event(
        event_id=uuid.uuid4(),
        kind="face+card",
        ts=datetime.now(UTC),
        site="school-a",
        device="gate-1",
        direction="in",
        student_id="HS0001",
        score=0.91,
        card_uid="04A1B2C3",
        track_id=5,
        quality=0.8,
        model_pack="dlib-r29-mtcnn",
        gallery_version=2,
        latency_ms=95.5,
    )
    return json.loads(encode(event))


TOPIC = "cg/v1/school-a/gate-1/events"


def _refused(payload: dict | bytes | str, topic: str = TOPIC) -> str:
    raw = json.dumps(payload) if isinstance(payload, dict) else payload
    with pytest.raises(PayloadError) as caught:
        decode(topic, raw)
    return str(caught.value)


@given(junk=st.binary(max_size=200))
def test_malformed_json_is_refused(junk: bytes) -> None:
    try:
        json.loads(junk)
    except (ValueError, UnicodeDecodeError):
        assert _refused(junk).startswith("payload:")
    else:
        _refused(junk)  # valid JSON, but never a valid event


WRONG_TYPES = {
    "event_id": [123, None, "not-a-uuid"],
    "kind": ["walk", 1, None],
    "ts": [1700000000, "yesterday", None],
    "site": [5, None],
    "direction": ["up", True],
    "student_id": [42, ["HS1"]],
    "score": ["0.9", True, [0.9]],
    "card_uid": [1234, "04a1b2c3", "XYZ"],
    "track_id": [1.5, "3", True, -1],
    "quality": ["high"],
    "gallery_version": ["2", -1],
    "latency_ms": ["95", None, -1],
    "schema_version": [2, "1", True, 1.0],
}


@given(data=st.data())
def test_wrong_types_name_the_field(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(WRONG_TYPES)))
    value = data.draw(st.sampled_from(WRONG_TYPES[field]))
    payload = _valid_event_dict() | {field: value}
    reason = _refused(payload)
    assert reason.startswith(f"{field}:") or f"; {field}:" in reason or field == "site"


@pytest.mark.parametrize(
    "field", ["event_id", "kind", "ts", "site", "device", "direction", "latency_ms"]
)
def test_missing_fields_are_named(field: str) -> None:
    payload = _valid_event_dict()
    del payload[field]
    assert f"{field}: Field required" in _refused(payload)


def test_unknown_fields_are_refused() -> None:
    assert "photo: Extra inputs are not permitted" in _refused(
        _valid_event_dict() | {"photo": "base64..."}
    )


@given(ts=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_naive_times_are_refused(ts: datetime) -> None:
    reason = _refused(_valid_event_dict() | {"ts": ts.isoformat()})
    assert reason.startswith("ts: Input should have timezone info")


@given(score=st.floats(allow_nan=False).filter(lambda x: not 0.0 <= x <= 1.0))
def test_out_of_range_scores_are_refused(score: float) -> None:
    reason = _refused(_valid_event_dict() | {"score": score})
    assert reason.startswith("score: ")


def test_kind_and_fields_must_agree() -> None:
    card_only = _valid_event_dict() | {"kind": "card"}
    assert "a card event carries no score or track_id" in _refused(card_only)
    face_only = _valid_event_dict() | {"kind": "face"}
    assert "a face event carries no card_uid" in _refused(face_only)
    no_score = _valid_event_dict() | {"score": None}
    assert "needs score" in _refused(no_score)
    checked_face = _valid_event_dict() | {"kind": "face", "card_uid": None, "face_check": "match"}
    assert "a face event carries no face_check" in _refused(checked_face)
    mismatch = _valid_event_dict() | {"face_check": "mismatch"}
    assert "a mismatch is a card event" in _refused(mismatch)


@given(extra=st.integers(1, 10_000))
def test_oversized_payloads_are_refused_before_parsing(extra: int) -> None:
    payload = b'{"x":"' + b"a" * (MAX_PAYLOAD_BYTES + extra) + b'"}'
    assert re.fullmatch(r"payload is \d+ bytes; the limit is 65536", _refused(payload))


def test_encode_refuses_an_oversized_message() -> None:
    ack = CommandAck(
        cmd_id=uuid.uuid4(),
        ts=datetime.now(UTC),
        site="s",
        device="d",
        ok=True,
        result={f"k{i}": "x" * 256 for i in range(16)},
        detail="y" * 1024,
    )
    assert len(encode(ack)) < MAX_PAYLOAD_BYTES  # the schema's own bounds keep acks small
    with pytest.raises(PayloadError, match="limit"):
        encode(
            CommandAck.model_construct(
                cmd_id=uuid.uuid4(),
                ts=datetime.now(UTC),
                site="s",
                device="d",
                ok=False,
                detail="y" * MAX_PAYLOAD_BYTES,
                result={},
            )
        )


@given(segment=st.sampled_from(["", "+", "#", "Gate", "gate/1", "gate 1", "-gate", "g" * 64]))
def test_bad_topic_segments_are_refused(segment: str) -> None:
    topic = f"cg/v1/school-a/{segment}/events"
    assert _refused(_valid_event_dict(), topic=topic).startswith("topic: ")


def test_payload_must_match_its_topic() -> None:
    payload = _valid_event_dict()
    assert "device: 'gate-1' does not match the topic's 'gate-2'" in _refused(
        payload, "cg/v1/school-a/gate-2/events"
    )
    assert "site: 'school-a' does not match the topic's 'school-b'" in _refused(
        payload, "cg/v1/school-b/gate-1/events"
    )


def test_gallery_must_use_https_off_loopback() -> None:
    notice = GalleryNotice(
        site="s",
        version=1,
        ts=datetime.now(UTC),
        model_pack="p",
        entries=1,
        url="https://a.example/g",
        sha256="0" * 64,
        size_bytes=1,
        key_id="k",
        signature="A" * 86 + "==",
    )
    payload = json.loads(encode(notice)) | {"url": "http://school.example.vn/g"}
    assert "url: must use https" in _refused(payload, "cg/v1/s/gallery")


def test_a_receipt_names_at_least_one_event_and_at_most_the_limit() -> None:
    topic = device_topic(Channel.STORED, "school-a", "gate-1")
    receipt = {"schema_version": 1, "ts": "2025-10-06T07:00:00+07:00"}
    many = [str(uuid.uuid4()) for _ in range(MAX_RECEIPT_IDS + 1)]
    assert "at least 1 item" in _refused(receipt | {"event_ids": []}, topic)
    assert f"at most {MAX_RECEIPT_IDS} items" in _refused(receipt | {"event_ids": many}, topic)
    assert "event_ids.0" in _refused(receipt | {"event_ids": ["not-a-uuid"]}, topic)
    assert len(decode(topic, json.dumps(receipt | {"event_ids": many[1:]})).message.event_ids) == (
        MAX_RECEIPT_IDS
    )
