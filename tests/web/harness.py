"""A whole campusgate running for the browser tests and the screenshot script: a real Mosquitto,
a fresh database with a school whose school day is today, and ``campusgate server run`` in its
own process (web server, ingest workers, notification dispatcher) on a free loopback port.

Gates publish over MQTT exactly as the edge agent does (:meth:`LiveSchool.gate_event`), so what a
page shows went through the broker, ingest and the database like in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from py_vapid import Vapid
from sqlalchemy import Engine
from sqlmodel import Session

from broker.codec import encode
from broker.managed import MosquittoInstance, connect, free_port, start_mosquitto
from broker.mosquitto_config import SERVER_USERNAME, DeviceAccount
from broker.payloads import Event
from broker.topics import Channel, device_topic
from server.db import create_db_engine
from server.migrations import upgrade
from server.models import Guardian, GuardianRelationship, Role, Student, StudentGuardian, User
from tests.server.api.conftest import FAST_HASHER
from tests.server.conftest import World
from tests.server.notify.family import school_today
from tests.server.notify.test_webpush import b64url, public_point

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "mat-khau-thu-nghiem-1"
SITE = "school-a"
GATES = ("gate-1", "gate-2")
CAMPUSGATE = Path(sys.executable).with_name("campusgate")


@dataclass
class Vapid256:
    """A school's VAPID key pair: private key as base64url raw, public key as base64url."""

    private: str
    public: str

    @classmethod
    def generate(cls) -> Vapid256:
        key = Vapid()
        key.generate_keys()
        raw = key.private_key.private_numbers().private_value.to_bytes(32, "big")
        return cls(b64url(raw), b64url(public_point(key.private_key)))


@dataclass
class LiveSchool:
    """The running system and the people who sign in to it (all with :data:`PASSWORD`)."""

    folder: Path
    db_url: str
    engine: Engine
    world: World
    broker: MosquittoInstance
    vapid: Vapid256
    url: str = ""
    parent_child: Student | None = None
    process: subprocess.Popen | None = None
    gates: dict[str, mqtt.Client] = field(default_factory=dict)

    # --- people ---------------------------------------------------------------------------------

    TEACHER = "teacher-school-a"
    PARENT = "phuhuynh01"
    ADMIN = "quantri"

    @classmethod
    def create(cls, folder: Path) -> LiveSchool:
        """Database, school and broker; call :meth:`start` to run the server."""
        db_url = f"sqlite:///{folder / 'campusgate.db'}"
        engine = create_db_engine(db_url)
        upgrade(engine)
        with Session(engine, expire_on_commit=False) as db:
            world = school_today(db)
            world.teacher.password_hash = FAST_HASHER.hash(PASSWORD)
            admin = User(
                username=cls.ADMIN,
                full_name="Quản trị viên",
                role=Role.ADMIN,
                password_hash=FAST_HASHER.hash(PASSWORD),
            )
            parent = User(
                username=cls.PARENT,
                full_name="Trần Thị Hoa",
                role=Role.PARENT,
                password_hash=FAST_HASHER.hash(PASSWORD),
            )
            names = ("Nguyễn Văn An", "Lê Thị Bình", "Phạm Minh Châu")
            for student, name in zip(world.students, names, strict=True):
                student.full_name = name
            db.add_all([world.teacher, admin, parent, *world.students])
            db.flush()
            guardian = Guardian(full_name=parent.full_name, phone="0912345678", user_id=parent.id)
            db.add(guardian)
            db.flush()
            child = world.students[0]
            db.add(
                StudentGuardian(
                    student_id=child.id,
                    guardian_id=guardian.id,
                    relationship=GuardianRelationship.MOTHER,
                    is_primary=True,
                    channel_preferences={"push": True},
                )
            )
            db.commit()
        broker = start_mosquitto(
            folder / "mosquitto", [DeviceAccount(SITE, gate) for gate in GATES]
        )
        school = cls(folder, db_url, engine, world, broker, Vapid256.generate())
        school.parent_child = child
        return school

    def start(self, timeout: float = 60.0, settings: Mapping[str, str] | None = None) -> None:
        """Run ``campusgate server run`` and return once it answers /healthz; ``settings`` are
        more ``CAMPUSGATE_SERVER__…`` variables (the face models' folder, say)."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        prefix = "CAMPUSGATE_SERVER__"
        push = {
            "kind": "webpush",
            "vapid_private_key": self.vapid.private,
            "vapid_subject": "mailto:admin@school-a.edu.vn",
            "timeout_s": 5,
        }
        env = os.environ | {
            f"{prefix}DATABASE_URL": self.db_url,
            f"{prefix}DATA_DIR": str(self.folder / "data"),
            f"{prefix}MQTT__PORT": str(self.broker.port(tls=False)),
            # The server builds its own URLs (the gallery files' in gallery notices) from it.
            f"{prefix}HTTP__PORT": str(port),
            f"{prefix}MQTT__PASSWORD": self.broker.passwords[SERVER_USERNAME],
            f"{prefix}NOTIFY__CHANNELS": json.dumps({"push": push}),
            f"{prefix}NOTIFY__PUBLIC_URL": self.url,
            f"{prefix}NOTIFY__POLL_INTERVAL_S": "0.05",
            **(settings or {}),
        }
        log = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(
            [str(CAMPUSGATE), "server", "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.broker.stop()
        self.engine.dispose()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Poll ``condition`` until it holds; RuntimeError naming ``what`` (with the server's
        log) if it never does."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"gave up waiting for {what}:\n{self.log()}")
            time.sleep(0.05)

    # --- gates ----------------------------------------------------------------------------------

    def gate_event(self, student: Student, *, gate: str = "gate-1", direction: str = "in") -> Event:
        """Publish an event from ``gate`` seeing ``student`` now (QoS 1, as gates do)."""
        if gate not in self.gates:
            client = self.broker.client(f"{SITE}.{gate}")
            if connect(self.broker, client) != 0:
                raise RuntimeError(f"{gate} could not connect to the broker")
            self.gates[gate] = client
        event = Event(
            event_id=uuid.uuid4(),
            kind="face",
            ts=datetime.now(UTC),
            site=SITE,
            device=gate,
            direction=direction,
            student_id=student.code,
            score=0.93,
            track_id=1,
            model_pack="dlib-r29-mtcnn",
            latency_ms=45.0,
        )
        topic = device_topic(Channel.EVENTS, SITE, gate)
        self.gates[gate].publish(topic, encode(event), qos=1).wait_for_publish(5)
        return event
