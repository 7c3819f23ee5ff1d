"""A real gate in front of a live school, for the end-to-end test.

:class:`~tests.web.harness.LiveSchool` runs the broker, the database and ``campusgate server
run``; this adds what a school does before a morning: a technician gives the gate its credential
(:func:`give_gate_its_secret`), an admin enrolls a student's photos (:func:`enroll`) and a parent
subscribes a phone (:func:`subscribe_phone`) through the API, and ``campusgate edge`` runs as a
gate does (:class:`GateProcess`), its camera a video file. :class:`EventTap` listens on the
broker, as a second consumer beside ingest, to count what the gate actually sent.

The gate's camera is a named pipe (:class:`CameraFeed`): the gate opens it as a video file and
waits there, connected and fetching its gallery, until the test plays the video into it. So the
walk starts only once the gate holds the gallery, however slow the machine, and the camera stays
open after the video until the test closes the pipe, so the gate is still running while its last
events go out.
"""

from __future__ import annotations

import errno
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from broker import passwords
from broker.codec import decode
from broker.managed import connect
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import Event
from broker.topics import Channel, device_topic
from edge.config_writer import write_config
from edge.outbox import Outbox
from server.auth_models import DeviceSecret
from server.db import writer
from server.models import Student
from server.notify.channel import PushSubscription
from tests.web.harness import CAMPUSGATE, PASSWORD, SITE, LiveSchool

API_TIMEOUT_S = 120.0
"""Enrolling loads the server's face engine on first use: slow on a busy machine, never hung."""


@contextmanager
def signed_in(school: LiveSchool, username: str) -> Iterator[httpx.Client]:
    """An API client with ``username``'s web session (cookie), sending its CSRF token."""
    with httpx.Client(base_url=f"{school.url}/api/v1", timeout=API_TIMEOUT_S) as client:
        answer = client.post("/auth/login", json={"username": username, "password": PASSWORD})
        answer.raise_for_status()
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        yield client


def subscribe_phone(school: LiveSchool, phone: PushSubscription) -> None:
    """The parent turns on notifications on a phone: its subscription goes to the API as a
    browser's ``PushSubscription.toJSON()`` does."""
    with signed_in(school, LiveSchool.PARENT) as parent:
        answer = parent.post(
            "/me/push-subscriptions",
            json={
                "endpoint": phone.endpoint,
                "keys": {"p256dh": phone.p256dh, "auth": phone.auth},
            },
        )
    assert answer.status_code == 201, answer.text


def enroll(school: LiveSchool, student: Student, photos: list[Path]) -> dict[str, Any]:
    """The admin enrolls ``photos`` of ``student`` with the guardian's consent; returns the
    gallery the server published for the school's site (``site``, ``version``, ``announced``)."""
    files = [("photos", (photo.name, photo.read_bytes(), "image/jpeg")) for photo in photos]
    consent = {"given_by": "guardian", "given_by_name": "Trần Thị Hoa"}
    with signed_in(school, LiveSchool.ADMIN) as admin:
        answer = admin.post(f"/students/{student.id}/faces", files=files, data=consent)
    assert answer.status_code == 201, answer.text
    done = answer.json()
    assert done["templates"] == len(photos), done
    [gallery] = done["galleries"]
    return gallery


def give_gate_its_secret(school: LiveSchool, gate: str) -> str:
    """What provisioning does: the server learns the gate's secret (the one the broker knows it
    by), so the gate's HTTP Basic fetch of gallery files is accepted. Returns the secret."""
    secret = school.broker.passwords[f"{SITE}.{gate}"]
    with Session(writer(school.engine)) as db:
        device = school.world.devices[gate]
        db.add(DeviceSecret(device_id=device.id, secret_hash=passwords.hash_password(secret)))
        db.commit()
    return secret


class EventTap:
    """Every event a gate publishes, as the broker delivers it to a second subscriber (the
    server's account, beside ingest's shared subscription)."""

    def __init__(self, school: LiveSchool, gate: str) -> None:
        self._received: queue.Queue[Event] = queue.Queue()
        self.events: list[Event] = []
        subscribed = threading.Event()
        client = school.broker.client(SERVER_USERNAME, tls=False, client_id=f"e2e-tap-{gate}")
        client.on_message = lambda _c, _u, m: self._received.put(decode(m.topic, m.payload).message)
        client.on_subscribe = lambda *_: subscribed.set()
        if connect(school.broker, client, tls=False) != 0:
            raise RuntimeError("the event tap could not connect to the broker")
        client.subscribe(device_topic(Channel.EVENTS, SITE, gate), qos=1)
        if not subscribed.wait(30):
            raise RuntimeError("the broker did not acknowledge the event tap's subscription")

    def seen(self) -> list[Event]:
        """The events received so far, oldest first."""
        while not self._received.empty():
            self.events.append(self._received.get())
        return list(self.events)


class CameraFeed:
    """A named pipe standing in for the gate's video file (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._close = threading.Event()
        self._writer: threading.Thread | None = None
        self.error: OSError | None = None

    def play(self, video: Path) -> None:
        """Write ``video`` into the pipe (the gate reads it at the video's own pace) and keep
        the pipe open until :meth:`close`."""
        data = video.read_bytes()

        def write() -> None:
            try:
                with self.path.open("wb") as pipe:
                    pipe.write(data)
                    pipe.flush()
                    self._close.wait()
            except OSError as exc:  # the gate went away mid-video: its log says why
                self.error = exc

        self._writer = threading.Thread(target=write, name="camera-feed", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """End the video: the gate's camera reads the end of the file and the gate stops. A
        gate still waiting for the video to begin gets an empty file instead."""
        self._close.set()
        if self._writer is not None:
            self._writer.join(30)
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody has the pipe open, nothing to end
                raise
        else:
            os.close(fd)


class GateProcess:
    """``campusgate edge --config gate.toml`` for ``gate`` of :data:`SITE`, on the broker's TLS
    listener with the gate's own account, its camera the given video file."""

    def __init__(
        self,
        folder: Path,
        school: LiveSchool,
        gate: str,
        camera: Path,
        models_dir: Path,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "gate.toml"
        write_config(
            config,
            {
                "device": {"site": SITE, "device": gate},
                "broker": {
                    "host": "127.0.0.1",
                    "port": school.broker.port(tls=True),
                    "ca_file": school.broker.layout.cafile,
                    "reconnect_min_delay_s": 0.2,
                    "reconnect_max_delay_s": 2.0,
                },
                "camera": {"source": str(camera)},
                "recognition": {"models_dir": models_dir, "min_face_px": 60, "detect_fps": 15.0},
                "storage": {"data_dir": "data"},
                # Written by the server into its data directory: the key gallery notices carry.
                "gallery": {"public_key": school.folder / "data" / "gallery.pub"},
            },
        )
        # The secret stays out of the file, as the gate's docs advise.
        env = os.environ | {
            "CAMPUSGATE_EDGE__BROKER__PASSWORD": school.broker.passwords[f"{SITE}.{gate}"]
        }
        self._log = folder / "gate.log"
        with self._log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(CAMPUSGATE), "edge", "--config", str(config)],
                env=env,
                cwd=folder,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self._log.read_text(errors="replace")[-5000:] if self._log.exists() else ""

    def running(self) -> bool:
        """True while the gate runs; RuntimeError with its log if it ended on its own."""
        code = self.process.poll()
        if code is None:
            return True
        raise RuntimeError(f"the gate exited with code {code}:\n{self.log()}")

    def wait(self, timeout: float) -> int:
        """Its exit code, once it has ended by itself (the video over)."""
        return self.process.wait(timeout)

    def outbox_depth(self) -> int:
        """Events the gate holds still waiting for the server's receipt (its outbox file, read
        beside the running gate: SQLite in WAL mode allows that)."""
        with Outbox(self.folder / "data" / "outbox.db") as outbox:
            return outbox.depth()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
