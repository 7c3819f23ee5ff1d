"""The whole of campusgate on one machine, for tests that break a part of it and count.

:class:`System` starts, from the project's own code and config:

* Mosquitto from the project's templates (TLS and ACL, one credential per gate);
* ``workers`` ingest worker processes on the shared subscription (:mod:`tests.system.processes`);
* a dispatcher process with an eSMS channel (SMS gateway) and a Web Push channel, both pointed at
  local providers on 127.0.0.1 (the eSMS fake honours RequestId like the real one; the push
  service verifies VAPID and decrypts like a browser);
* a school on a fresh database (SQLite file, or any PostgreSQL URL), where every day is a school
  day and one session spans it, so passes stamped "now" count whenever the tests run.

Gates are :class:`~tests.system.gates.SyntheticGate` instances (in the test process) or gate
processes. A test enrolls its own students (:meth:`System.enroll`: one guardian each, on SMS or
on Web Push), lets them pass, breaks something, and :meth:`System.settle` counts what the gates
sent, what the database stored and what the providers accepted: :class:`Tally`.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col
from sqlmodel import select as sql_select

from broker.managed import start_mosquitto
from broker.mosquitto_config import SERVER_USERNAME, DeviceAccount
from server.db import create_db_engine, writer
from server.migrations import upgrade
from server.models import Attendance, Device, RawEvent, Student, Term
from server.notify.models import Notification, NotificationStatus, PushSubscription
from tests.server.notify.family import Sms, add_guardian, school_today, start_push, start_sms
from tests.server.notify.servers import HttpServer, Reply, Request
from tests.server.notify.test_esms import API_KEY, BRANDNAME, PATH, SECRET_KEY
from tests.system.gates import SITE, SyntheticGate, gate_settings

ROOT = Path(__file__).resolve().parents[2]
GATES = tuple(f"gate-{n}" for n in range(1, 9))
SETTLE_STALL_S = 20.0
""":meth:`System.settle` waits for the counts to come right while they keep moving, and gives up
once nothing moved for this long (not a speed limit: a pipeline that lost something never gets
there, and the tally then says what is missing)."""
PASSES = 30
"""Students per fault test: each passes once, so each pass is one attendance row and one
message."""
_KEY_STUDENT = re.compile(r"^st(\d+):")


@dataclass
class Batch:
    """One test's students, by code and by id."""

    codes: list[str]
    ids: list[int]


@dataclass
class Tally:
    """What one fault test counted. ``sent``: events the gates hold durably (acknowledged to
    the gate's own outbox and then by the broker); ``stored``: those in the database;
    ``notified``: messages the local providers accepted (one expected per student)."""

    fault: str
    sent: int
    stored: int
    notified: int
    expected_notifications: int
    lost_events: int
    doubled_events: int
    lost_notifications: int
    doubled_notifications: int
    detail: dict[str, Any] = field(default_factory=dict)

    def assert_nothing_lost_or_doubled(self) -> None:
        print(json.dumps(asdict(self), ensure_ascii=False))
        log = os.environ.get("CAMPUSGATE_RELIABILITY_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(self), ensure_ascii=False) + "\n")
        assert (self.lost_events, self.doubled_events) == (0, 0), self
        assert (self.lost_notifications, self.doubled_notifications) == (0, 0), self
        assert self.stored == self.sent and self.notified == self.expected_notifications, self


class FlakyGateway:
    """The eSMS handler; HTTP 500 while ``failing`` (counting those answers); while ``stalling``,
    it takes each message (the parent will get it) but never answers, as a gateway does whose
    reply is lost, so the sender cannot know."""

    def __init__(self, sms: Sms) -> None:
        self.fake = sms.fake
        self.failing = False
        self.stalling = False
        self.errors = 0

    def __call__(self, request: Request) -> Reply:
        if self.failing:
            self.errors += 1
            return Reply(500, "Internal Server Error")
        reply = self.fake(request)
        return replace(reply, stall=True) if self.stalling else reply


class System:
    """A running campusgate; :meth:`close` stops every part."""

    def __init__(
        self, tmp: Path, db_url: str, workers: int = 2, share_group: str = "ingest"
    ) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.engine = create_db_engine(db_url)
        upgrade(self.engine)
        self._processes: dict[str, subprocess.Popen[str]] = {}
        self._phones = 0
        self.sms = start_sms(HttpServer, timeout_s=2)
        self.gateway = FlakyGateway(self.sms)
        self.sms.server.handler = self.gateway
        self.push = start_push(HttpServer)
        self._seed()
        self.broker = start_mosquitto(tmp / "mosquitto", [DeviceAccount(SITE, g) for g in GATES])
        self.config = {
            "db_url": db_url,
            "mqtt_port": self.broker.port(tls=False),
            "mqtt_password": self.broker.passwords[SERVER_USERNAME],
            "gate_port": self.broker.port(tls=True),
            "ca": str(self.broker.layout.cafile),
            "gate_passwords": {g: self.broker.passwords[f"{SITE}.{g}"] for g in GATES},
            "notify": self._notify_settings(),
            "share_group": share_group,
        }
        try:
            for index in range(workers):
                self.start_worker(index)
            self.start("dispatcher", "dispatch")
        except BaseException:
            self.close()
            raise

    # --- the school -----------------------------------------------------------------------------

    def _seed(self) -> None:
        with Session(writer(self.engine), expire_on_commit=False) as db:
            world = school_today(db)
            # A run that crosses midnight, here or in Hà Nội, still finds a school day.
            term = db.exec(sql_select(Term).where(Term.name == "Hôm nay")).one()
            term.starts_on -= timedelta(days=1)
            term.ends_on += timedelta(days=1)
            db.add(term)
            db.add_all(
                Device(site_id=world.site.id, device_id=g, credential_id=f"{SITE}.{g}")
                for g in GATES
                if g not in world.devices
            )
            db.commit()
            self.school_id, self.class_id = world.school.id, world.school_class.id

    def enroll(self, tag: str, count: int, channels: tuple[str, ...] = ("sms", "push")) -> Batch:
        """``count`` students ``{tag}000``…, each with one guardian who wants arrivals on the
        next of ``channels`` in turn (push guardians subscribed at the local push service)."""
        with Session(writer(self.engine), expire_on_commit=False) as db:
            students = [
                Student(
                    code=f"{tag}{n:03d}",
                    full_name=f"Học sinh {tag} {n}",
                    school_id=self.school_id,
                    class_id=self.class_id,
                )
                for n in range(count)
            ]
            db.add_all(students)
            db.commit()
            for n, student in enumerate(students):
                channel = channels[n % len(channels)]
                self._phones += 1
                guardian = add_guardian(
                    db,
                    student,
                    f"Phụ huynh {tag} {n}",
                    phone=f"091{self._phones:07d}",
                    channels=(channel,),
                )
                if channel == "push":
                    browser = self.push.browser.subscription(
                        f"{self.push.server.url}/push/g{guardian.id}"
                    )
                    db.add(
                        PushSubscription(
                            guardian_id=guardian.id,
                            endpoint=browser.endpoint,
                            p256dh=browser.p256dh,
                            auth=browser.auth,
                        )
                    )
            db.commit()
            return Batch([s.code for s in students], [s.id for s in students])

    def _notify_settings(self) -> dict[str, Any]:
        push = self.push.channel.config
        return {
            "channels": {
                "sms": {
                    "kind": "esms",
                    "url": self.sms.server.url + PATH,
                    "api_key": API_KEY,
                    "secret_key": SECRET_KEY,
                    "brandname": BRANDNAME,
                    "timeout_s": 2,
                },
                "push": {
                    "kind": "webpush",
                    "vapid_private_key": push.vapid_private_key.get_secret_value(),
                    "vapid_subject": push.vapid_subject,
                    "timeout_s": 2,
                },
            },
            "send_threads": 4,
            "lease_s": 30,
            "max_attempts": 50,
            "retry_base_s": 0.5,
            "retry_max_s": 2,
            "poll_interval_s": 0.05,
        }

    # --- processes ------------------------------------------------------------------------------

    def start(
        self, name: str, *args: str, ready_timeout: float = 60.0, **extra: Any
    ) -> subprocess.Popen[str]:
        """Start a process of :mod:`tests.system.processes` (``extra`` added to its settings)
        and wait for its ``ready``."""
        config = json.dumps(self.config | extra)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CG_SYSTEM": config}
        with open(self.tmp / f"{name}.log", "a") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.system.processes", *args],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
                cwd=ROOT,
            )
        self._processes[name] = process
        line = read_line(process, ready_timeout)
        if line != "ready":
            raise RuntimeError(f"{name} did not start ({line!r}); see {self.tmp / name}.log")
        return process

    def start_worker(self, index: int) -> None:
        self.start(f"ingest-{index}", "ingest", str(index))

    def kill(self, name: str) -> None:
        """SIGKILL: no clean-up, no DISCONNECT, whatever was in hand is gone."""
        process = self._processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str) -> None:
        process = self._processes.pop(name)
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def gate(self, device: str, port: int | None = None, **kwargs: Any) -> SyntheticGate:
        """A gate in this process (its outbox in the system's folder), connected."""
        settings = gate_settings(
            port or self.config["gate_port"],
            device,
            self.config["gate_passwords"][device],
            self.config["ca"],
        )
        gate = SyntheticGate(settings, self.tmp / f"outbox-{device}.db", **kwargs)
        if not gate.link.wait_connected(20):
            gate.close()
            raise RuntimeError(f"{device} did not connect")
        return gate

    def close(self) -> None:
        for name in list(self._processes):
            self.stop(name)
        self.broker.stop()
        self.sms.server.stop()
        self.push.server.stop()
        self.engine.dispose()

    # --- counting -------------------------------------------------------------------------------

    def settle(self, fault: str, batch: Batch, sent: list[str]) -> Tally:
        """Wait until every sent event is stored and every student's guardian has had the
        message (or nothing moves for :data:`SETTLE_STALL_S`), then count."""
        last, moved_at = None, time.monotonic()
        while True:
            tally = self.count(fault, batch, sent)
            done = tally.stored >= tally.sent and tally.notified >= tally.expected_notifications
            if done and not tally.detail["open_notifications"]:
                return tally
            progress = (tally.stored, tally.notified, tally.detail["sms_requests"])
            if progress != last:
                last, moved_at = progress, time.monotonic()
            elif time.monotonic() - moved_at > SETTLE_STALL_S:
                return tally
            time.sleep(0.2)

    def count(self, fault: str, batch: Batch, sent: list[str]) -> Tally:
        sent_ids = {uuid.UUID(event_id) for event_id in sent}
        students = set(batch.ids)
        with Session(self.engine) as db:
            stored_ids = list(
                db.exec(sql_select(RawEvent.event_id).where(col(RawEvent.student_id).in_(students)))
            )
            attendance = Counter(
                db.exec(
                    sql_select(Attendance.student_id).where(
                        col(Attendance.student_id).in_(students)
                    )
                )
            )
            rows = list(
                db.exec(
                    sql_select(Notification.idempotency_key, Notification.status).where(
                        col(Notification.student_id).in_(students)
                    )
                )
            )
        provider = self._provider_keys(students)
        stored = Counter(stored_ids)
        keys = Counter(key for key, _ in rows)
        open_rows = [key for key, status in rows if status != NotificationStatus.ACCEPTED]
        return Tally(
            fault=fault,
            sent=len(sent_ids),
            stored=len(sent_ids & set(stored)),
            notified=len(provider),
            expected_notifications=len(students),
            lost_events=len(sent_ids - set(stored)),
            doubled_events=(
                sum(n - 1 for n in stored.values()) + sum(n - 1 for n in attendance.values())
            ),
            lost_notifications=len(students) - len(provider),
            doubled_notifications=(
                sum(n - 1 for n in provider.values()) + sum(n - 1 for n in keys.values())
            ),
            detail={
                "attendance_rows": sum(attendance.values()),
                "notification_rows": len(rows),
                "open_notifications": len(open_rows),
                "sms_requests": self._sms_requests(students),
                "sms_500s": self.gateway.errors,
            },
        )

    def _provider_keys(self, students: set[int]) -> Counter[str]:
        """Accepted messages per idempotency key at both local providers, for ``students``."""
        keys = [body["RequestId"] for body in list(self.sms.fake.sent)]
        keys += [payload["tag"] for _, _, payload in list(self.push.fake.delivered)]
        return Counter(key for key in keys if _student_of(key) in students)

    def _sms_requests(self, students: set[int]) -> int:
        """Requests the SMS gateway received about ``students``: first tries, retries after a
        500, repeats it turned away by RequestId."""
        keys = [r.json().get("RequestId") for r in list(self.sms.server.requests) if r.body]
        return sum(_student_of(key) in students for key in keys)


def _student_of(key: str) -> int | None:
    match = _KEY_STUDENT.match(key or "")
    return int(match.group(1)) if match else None


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next line the process prints, or '' if it ends or says nothing within ``timeout``."""
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().strip() if ready else ""


def walk(
    gate: SyntheticGate,
    codes: list[str],
    interval_s: float = 0.02,
    at: Mapping[int, Callable[[], object]] | None = None,
) -> list[str]:
    """Each student passes in turn, ``interval_s`` apart; ``at[i]()`` runs before pass ``i``.
    Returns the event ids, in order."""
    sent = []
    for index, code in enumerate(codes):
        if at and index in at:
            at[index]()
        sent.append(gate.pass_student(code))
        time.sleep(interval_s)
    return sent
