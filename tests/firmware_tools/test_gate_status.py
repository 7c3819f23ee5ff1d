"""``gatectl gate status`` against a real Mosquitto: gates publish their retained status and,
while the command listens, telemetry (which the contract does not retain), each with its own
credential as real gates do; the command reads them with the server's account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.codec import encode
from broker.managed import MosquittoInstance, connect
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import StageTiming, Status, Telemetry, utc_now
from broker.topics import Channel, device_topic
from firmware_tools.cli import app

GATECTL = Path(sys.executable).parent / "gatectl"
pytestmark = pytest.mark.mosquitto


def _status(device: str, state: str, **fields) -> Status:
    return Status(
        site="school-a", device=device, state=state, ts=utc_now(), version="0.1.0", **fields
    )


def _telemetry() -> Telemetry:
    return Telemetry(
        site="school-a",
        device="gate-1",
        ts=utc_now(),
        fps_in=15.0,
        fps_processed=9.5,
        frames_dropped=3,
        stages={
            "detect": StageTiming(p50_ms=40.0, p95_ms=70.0),
            "embed": StageTiming(p50_ms=20.0, p95_ms=35.0),
        },
        outbox_depth=7,
        mem_rss_mb=310.0,
        uptime_s=120.0,
    )


@pytest.fixture
def gates(mosquitto: MosquittoInstance) -> Iterator[MosquittoInstance]:
    """gate-1 online (sending telemetry every 0.2 s), gate-2 gone offline; both retained."""
    one = mosquitto.client("school-a.gate-1")
    two = mosquitto.client("school-a.gate-2")
    for client in (one, two):
        assert not connect(mosquitto, client).is_failure
    online = _status("gate-1", "online", model_pack="dlib-r29-mtcnn", gallery_version=4)
    offline = _status("gate-2", "offline")
    for client, status in ((one, online), (two, offline)):
        topic = device_topic(Channel.STATUS, "school-a", status.device)
        client.publish(topic, encode(status), qos=1, retain=True).wait_for_publish(5)
    stop = threading.Event()

    def send_telemetry() -> None:
        while not stop.wait(0.2):
            one.publish(device_topic(Channel.TELEMETRY, "school-a", "gate-1"), encode(_telemetry()))

    sender = threading.Thread(target=send_telemetry, daemon=True)
    sender.start()
    yield mosquitto
    stop.set()
    sender.join()


def status(broker: MosquittoInstance, *args: str, password: str | None = None):
    env = dict(os.environ, GATECTL_BROKER_PASSWORD=password or broker.passwords[SERVER_USERNAME])
    command = [
        str(GATECTL), "gate", "status",
        "--broker", f"127.0.0.1:{broker.port(tls=True)}",
        "--ca", str(broker.layout.cafile),
        "--wait", "3",
        *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_every_gate_is_listed_with_its_state_and_telemetry(gates: MosquittoInstance) -> None:
    done = status(gates, "--json")
    assert done.returncode == 1, done.stderr  # gate-2 is offline
    report = json.loads(done.stdout)
    by_device = {gate["device"]: gate for gate in report["gates"]}
    assert set(by_device) == {"gate-1", "gate-2"}
    one, two = by_device["gate-1"], by_device["gate-2"]
    assert one["state"] == "online" and two["state"] == "offline"
    assert one["status"]["model_pack"] == "dlib-r29-mtcnn" and one["status"]["gallery_version"] == 4
    assert one["telemetry"]["fps_in"] == 15.0 and one["telemetry"]["outbox_depth"] == 7
    assert one["last_seen"] == one["telemetry"]["ts"].replace("Z", "+00:00")
    assert two["telemetry"] is None and two["last_seen"] is not None
    assert report["missing"] == [] and report["rejected"] == []


def test_the_table_shows_fps_latency_outbox_and_versions(gates: MosquittoInstance) -> None:
    done = status(gates, "school-a/gate-1")
    assert done.returncode == 0, done.stderr
    [row] = [line for line in done.stdout.splitlines() if "school-a/gate-1" in line]
    for shown in ("online", "15/9.5", "60/105 ms", " 7 ", "0.1.0", "dlib-r29-mtcnn", " 4 "):
        assert shown in row, row


def test_a_gate_that_never_reported_is_missing(gates: MosquittoInstance) -> None:
    done = status(gates, "school-a/gate-9", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["missing"] == ["school-a/gate-9"]
    assert "school-a/gate-9: no status on this broker" in done.stderr


def test_a_malformed_status_is_shown_as_rejected_not_as_a_gate(
    mosquitto: MosquittoInstance,
) -> None:
    gate = mosquitto.client("school-a.gate-1")
    assert not connect(mosquitto, gate).is_failure
    topic = device_topic(Channel.STATUS, "school-a", "gate-1")
    gate.publish(topic, b'{"state": "maybe"}', qos=1, retain=True).wait_for_publish(5)
    done = status(mosquitto, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["gates"] == [] and report["rejected"][0].startswith(topic)


def test_a_wrong_password_is_refused_with_a_hint(gates: MosquittoInstance) -> None:
    done = status(gates, password="not-the-password")
    assert done.returncode == 1
    assert "refused the connection: Not authorized" in done.stderr
    assert "check the username and password" in done.stderr


def test_bad_arguments_exit_2() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["gate", "status", "--broker", "no-port"]).exit_code == 2
    bad_id = runner.invoke(app, ["gate", "status", "School A/gate-1"])
    assert bad_id.exit_code == 2 and "site 'School A' is not allowed" in bad_id.stderr
    zone = runner.invoke(app, ["gate", "status", "--tz", "Mars/Olympus"])
    assert zone.exit_code == 2 and "unknown time zone" in zone.stderr
