"""The installed ``campusgate`` command: help, schemas and message validation."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from broker.codec import encode
from broker.payloads import Event, utc_now

BIN = Path(sys.executable).parent


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "campusgate"), *args], input=stdin, capture_output=True, timeout=60
    )


def _event_bytes(**changes) -> bytes:
    event = Event(
        event_id=uuid.uuid4(),
        kind="face",
        ts=utc_now(),
        site="school-a",
        device="gate-1",
        direction="in",
        student_id="HS1",
        score=0.8,
        track_id=1,
        model_pack="dlib-r29-mtcnn",
        latency_ms=80.0,
    )
    return json.dumps(json.loads(encode(event)) | changes).encode()


def test_validate_accepts_a_valid_event(tmp_path) -> None:
    message = tmp_path / "event.json"
    message.write_bytes(_event_bytes())
    result = run("broker", "validate", "cg/v1/school-a/gate-1/events", str(message))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith("valid: Event (schema v1) for school-a/gate-1")


def test_validate_rejects_a_broken_event_with_the_reason() -> None:
    result = run(
        "broker",
        "validate",
        "cg/v1/school-a/gate-1/events",
        "-",
        stdin=_event_bytes(score=1.7, ts="2026-11-22T07:00:00"),
    )
    assert result.returncode == 2
    reason = result.stderr.decode()
    assert "score: Input should be less than or equal to 1 (got 1.7)" in reason
    assert "ts: Input should have timezone info" in reason


def test_validate_rejects_a_bad_topic_and_a_missing_file(tmp_path) -> None:
    bad_topic = run("broker", "validate", "cg/v1/school-a/gate+1/events", "-", stdin=_event_bytes())
    assert bad_topic.returncode == 2 and "wildcard" in bad_topic.stderr.decode()
    missing = run("broker", "validate", "cg/v1/school-a/gate-1/events", str(tmp_path / "no"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr.decode()


def test_schema_prints_every_channel() -> None:
    result = run("broker", "schema")
    assert result.returncode == 0
    schemas = json.loads(result.stdout)
    assert set(schemas) == {
        "events",
        "stored",
        "status",
        "telemetry",
        "config",
        "gallery",
        "cmd",
        "ack",
    }
    assert "event_id" in schemas["events"]["required"]
    one = json.loads(run("broker", "schema", "events").stdout)
    assert one["title"] == "Event"


def test_every_command_has_english_help() -> None:
    for args in (
        [],
        ["broker"],
        ["broker", "validate"],
        ["broker", "schema"],
        ["up"],
        ["bench"],
        ["bench", "contract"],
    ):
        result = run(*args, "--help")
        assert result.returncode == 0, args
        text = result.stdout.decode()
        assert text.startswith("Usage: campusgate") and len(text.splitlines()) > 4


def test_bench_contract_prints_figures_with_a_baseline() -> None:
    result = run("bench", "contract", "--messages", "300")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["baseline"] == "json.loads" and figures["messages"] == 300
    assert figures["decode_ms"]["p50"] > 0 and figures["ratio_p50"] > 0
