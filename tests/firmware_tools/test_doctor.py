"""``gatectl doctor`` on a gate configuration as a bundle would give it, against a real Mosquitto
(TLS, the gate's own password), a real HTTP server for the clock, an emulated PN532 on a pty,
a video file as the camera and the default model pack."""

from __future__ import annotations

import email.utils
import http.server
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from broker.managed import MosquittoInstance
from edge.outbox import Outbox
from firmware_tools.emulators import PN532Emulator

GATECTL = Path(sys.executable).parent / "gatectl"
CHECKS = [
    "config",
    "clock",
    "broker",
    "gallery",
    "model pack",
    "camera",
    "card reader",
    "disk",
    "outbox",
]


def write_config(
    folder: Path,
    broker: MosquittoInstance,
    default_pack,
    *,
    password: str | None = None,
    reader_port: str | None = None,
) -> Path:
    """A gate.toml like a provisioning bundle's: relative paths next to it."""
    video = folder / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (320, 240))
    for n in range(20):
        writer.write(np.full((240, 320, 3), 100 + n, np.uint8))
    writer.release()
    (folder / "ca.crt").write_bytes(broker.layout.cafile.read_bytes())
    reader = f'\n[reader]\nkind = "pn532"\nport = "{reader_port}"\n' if reader_port else ""
    config = folder / "gate.toml"
    config.write_text(
        f"""
[device]
site = "school-a"
device = "gate-1"

[broker]
host = "127.0.0.1"
port = {broker.port(tls=True)}
password = "{password or broker.passwords["school-a.gate-1"]}"
ca_file = "ca.crt"

[camera]
source = "{video}"

[recognition]
models_dir = "{default_pack.root.parent}"

[storage]
data_dir = "data"
{reader}"""
    )
    return config


@pytest.fixture
def date_server() -> Iterator[callable]:
    """``date_server(offset_s)``: the URL of a real HTTP server whose Date header is off by
    ``offset_s`` seconds."""
    servers = []

    def start(offset_s: float) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def date_time_string(self, timestamp=None) -> str:
                return email.utils.formatdate(time.time() + offset_s, usegmt=True)

            def log_message(self, *args) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/healthz"

    yield start
    for httpd in servers:
        httpd.shutdown()


def doctor(config: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run(
        [str(GATECTL), "doctor", "--config", str(config), "--json", "--timeout", "5", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, {check["name"]: check for check in json.loads(done.stdout)["checks"]}


def doctor_text(config: Path) -> subprocess.CompletedProcess:
    command = [str(GATECTL), "doctor", "--config", str(config), "--timeout", "5"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.mosquitto
def test_a_good_gate_passes_every_check(
    mosquitto: MosquittoInstance, default_pack, date_server, tmp_path: Path
) -> None:
    with PN532Emulator() as reader:
        config = write_config(tmp_path, mosquitto, default_pack, reader_port=reader.path)
        done, checks = doctor(config, "--server", date_server(0))
    assert done.returncode == 0, done.stdout
    assert list(checks) == CHECKS
    # No bundle names the server's API here (tests/server/enrollment checks the gallery step).
    assert checks.pop("gallery")["outcome"] == "skip"
    assert {check["outcome"] for check in checks.values()} == {"pass"}, checks
    assert "accepted school-a.gate-1" in checks["broker"]["detail"]
    assert "hashes match" in checks["model pack"]["detail"]
    assert "320×240" in checks["camera"]["detail"]
    reader = checks["card reader"]["detail"]
    assert reader.startswith("pn532 on /dev/pts/") and "firmware" in reader
    assert checks["outbox"]["detail"].startswith("empty")


@pytest.mark.mosquitto
def test_what_is_not_configured_is_skipped_and_the_text_report_has_a_line_each(
    mosquitto: MosquittoInstance, default_pack, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, default_pack)
    done, checks = doctor(config)
    assert done.returncode == 0, done.stdout
    skipped = ("clock", "gallery", "card reader")
    assert {checks[name]["outcome"] for name in skipped} == {"skip"}
    assert all(checks[name]["outcome"] == "pass" for name in CHECKS if name not in skipped)

    text = doctor_text(config)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"{'–' if name in skipped else '✔'} {name}" for name in CHECKS
    ]
    assert "all checks passed" in text.stderr


@pytest.mark.mosquitto
def test_a_wrong_password_fails_the_broker_check_with_a_hint(
    mosquitto: MosquittoInstance, default_pack, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, default_pack, password="not-the-password")
    done, checks = doctor(config)
    assert done.returncode == 1
    broker = checks["broker"]
    assert broker["outcome"] == "fail" and "refused the connection" in broker["detail"]
    assert "check the username and password" in broker["hint"]
    assert checks["camera"]["outcome"] == "pass"  # the other checks still ran

    text = doctor_text(config)
    assert text.returncode == 1
    assert "✘ broker:" in text.stdout and "    hint: check the username and password" in text.stdout
    assert "1 check(s) failed" in text.stderr


@pytest.mark.mosquitto
def test_a_clock_a_minute_off_the_server_the_bundle_names_fails(
    mosquitto: MosquittoInstance, default_pack, date_server, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, default_pack)
    server = date_server(-60)
    (tmp_path / "bundle.json").write_text(json.dumps({"site": "school-a", "server_url": server}))
    done, checks = doctor(config)
    assert done.returncode == 1
    clock = checks["clock"]
    assert clock["outcome"] == "fail" and f" s ahead of {server}" in clock["detail"]
    assert 50 < float(clock["detail"].split(" s ")[0]) < 70  # a minute, give or take the trip
    assert "timedatectl set-ntp true" in clock["hint"]


@pytest.mark.mosquitto
def test_events_stuck_in_the_outbox_fail_the_outbox_check(
    mosquitto: MosquittoInstance, default_pack, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto, default_pack)
    (tmp_path / "data").mkdir()
    with Outbox(tmp_path / "data" / "outbox.db") as outbox:
        for n in range(3):
            outbox.put("cg/v1/school-a/gate-1/events", b"{}", f"event-{n}")
    with closing(sqlite3.connect(tmp_path / "data" / "outbox.db")) as db, db:
        db.execute("UPDATE outbox SET created_at = created_at - 3600")
    done, checks = doctor(config)
    assert done.returncode == 1
    outbox = checks["outbox"]
    assert outbox["outcome"] == "fail" and outbox["detail"].startswith("3 of 100000 events waiting")
    assert "events are not being delivered" in outbox["hint"]


def test_an_invalid_config_fails_and_skips_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text('[device]\nsite = "school-a"\ndevice = "gate-1"\n[broker]\nport = 70000\n')
    done, checks = doctor(config)
    assert done.returncode == 1
    assert checks["config"]["outcome"] == "fail" and "broker.port" in checks["config"]["detail"]
    assert [checks[name]["outcome"] for name in CHECKS[1:]] == ["skip"] * 8
