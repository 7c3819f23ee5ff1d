"""``campusgate up`` as a new user runs it: everything starts, the demo gate comes online, the
demo admin can sign in, and Ctrl-C stops every part."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from broker.managed import free_port
from broker.topics import device_topic

CAMPUSGATE = Path(sys.executable).parent / "campusgate"


def make_clip(path: Path, seconds: float = 30.0, fps: int = 10) -> Path:
    """A plain grey 320×240 clip: a camera with nobody in front of it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    frame = np.full((240, 320, 3), 90, np.uint8)
    for _ in range(int(seconds * fps)):
        writer.write(frame)
    writer.release()
    return path


def retained_status(
    port: int, timeout_s: float = 60.0, auth: tuple[str, str] | None = None
) -> dict:
    """The demo gate's status, once it says online with the server's first gallery."""
    seen: dict = {}
    online = threading.Event()

    def on_message(_client, _userdata, message) -> None:
        seen.update(json.loads(message.payload))
        if seen.get("state") == "online" and seen.get("gallery_version"):
            online.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = on_message
    if auth is not None:
        client.username_pw_set(*auth)
    client.on_connect = lambda c, *_: c.subscribe(device_topic("status", "demo", "gate-1"), 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        online.wait(timeout_s)
    finally:
        client.loop_stop()
        client.disconnect()
    return seen


def read_until(stream, marker: str, timeout_s: float = 180.0) -> str:
    """Lines of ``stream`` up to and including the one holding ``marker``."""
    text, deadline = "", time.monotonic() + timeout_s
    while marker not in text and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        text += line
    return text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_up_starts_the_system_and_ctrl_c_stops_it(
    tmp_path: Path, default_pack, broker: str
) -> None:
    mqtt_port, http_port = free_port(), free_port()
    clip = make_clip(tmp_path / "camera.mp4")
    env = {**os.environ, "CAMPUSGATE_MODELS": str(default_pack.root.parent)}
    args = ["--mqtt-port", str(mqtt_port), "--http-port", str(http_port), "--camera", str(clip)]
    args += ["--broker", broker]
    up = subprocess.Popen(
        [str(CAMPUSGATE), "up", *args, "--data-dir", str(tmp_path / "state")],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        said = read_until(up.stderr, "Ctrl-C stops everything.")
        assert "is up" in said, said
        password = said.split("sign in      admin / ")[1].split()[0]
        assert httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200
        login = httpx.post(
            f"http://127.0.0.1:{http_port}/api/v1/auth/login",
            json={"username": "admin", "password": password},
        )
        assert login.status_code == 200, login.text
        auth = None
        if broker == "mosquitto":
            # Mosquitto takes no anonymous client: read as the server does, with its account.
            kept = (tmp_path / "state" / "demo-secrets.env").read_text()
            auth = ("campusgate-server", kept.split("mqtt-server=")[1].split()[0])
            gate_toml = (tmp_path / "state" / "gate-1" / "gate.toml").read_text()
            assert "ca_file" in gate_toml  # the gate is on the TLS listener
        status = retained_status(mqtt_port, auth=auth)
        assert status.get("state") == "online" and status.get("gallery_version") == 1, status
    finally:
        up.send_signal(signal.SIGINT)
        _, rest = up.communicate(timeout=60)
    assert up.returncode == 0 and "stopped" in rest
    children = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "state")], capture_output=True, text=True
    )
    assert children.stdout == "", "a part of the system outlived Ctrl-C"
