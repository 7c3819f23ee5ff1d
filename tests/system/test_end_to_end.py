"""The whole system, as a school uses it: a student walks past a gate and is on the roll.

An admin enrolls a student from photos of a person (the API; the server embeds them and
publishes a signed gallery, announced on the broker); the gate — ``campusgate edge``, on
Mosquitto's TLS listener with its own account under the per-device ACL — fetches that gallery
with its credential and then sees a video of the same person, made from a photo that was not
enrolled, walking across the frame towards the camera, and then a stranger. What must follow:
one event for the student over MQTT, stored by ingest; the student present today; one Web Push
to the parent's phone (a local push service decrypting with the phone's private key) saying in
Vietnamese that the child arrived; the teacher's roll in Chromium showing the student present at
the gate; and for the stranger, an unknown event and no message to anyone.

One morning (:func:`morning`) runs it all once; each test checks one of those outcomes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session, col, select

from benchmarks.walk_video import Face, make_walks_video
from broker.payloads import Event
from models.engine import FaceEngine
from models.images import read_image
from models.packs import Pack
from server.models import Attendance, AttendanceStatus, Device, EventOutcome, RawEvent, Student
from server.notify.models import Notification, NotificationStatus
from tests.server.notify.servers import HttpServer
from tests.server.notify.test_webpush import Browser as Phone
from tests.server.notify.test_webpush import FakePushService
from tests.system.e2e_school import (
    CameraFeed,
    EventTap,
    GateProcess,
    enroll,
    give_gate_its_secret,
    subscribe_phone,
)
from tests.web.conftest import sign_in
from tests.web.harness import LiveSchool

GATE = "gate-1"
GATE_NAME = "Cổng chính"
"""What the school calls ``gate-1`` (tests.server.notify.family.school_today names it): the
name parents and teachers read."""
WALKER = "face_recognition/by_identity/obama/obama.jpg"
ENROLLED = (
    "face_recognition/by_identity/obama/obama2.jpg",
    "face_recognition/by_identity/obama/obama3.jpg",
)
STRANGER = "face_recognition/by_identity/biden/biden.jpg"
PHONE = "/push/phone-1"
WAIT_S = 120.0
"""How long to wait for each step: a deadline for a busy machine, not a speed limit; shorter
than the suite's per-test timeout, so a stuck step fails with the logs instead of being killed."""

pytestmark = pytest.mark.mosquitto


@dataclass
class Morning:
    """What one run of the system left behind for the tests to check."""

    school: LiveSchool
    child: Student
    push: FakePushService
    gallery_version: int
    sent: list[Event]
    """Every event the gate published, as the broker delivered it, once per ``event_id`` (a
    gate repeats an event whose receipt it has not had: that is one event, not two)."""
    gate_exit_code: int
    gate_outbox_depth: int
    gate_log: str

    def walker_events(self) -> list[Event]:
        return [event for event in self.sent if event.student_id == self.child.code]

    def walker(self) -> Event:
        """The student's one event (the test fails, showing what the gate sent, otherwise)."""
        return self._one(self.walker_events(), f"student {self.child.code}")

    def stranger(self) -> Event:
        """The one event of a face the gallery does not know."""
        return self._one([event for event in self.sent if event.student_id is None], "unknown")

    def _one(self, events: list[Event], who: str) -> Event:
        sent = [(str(e.event_id), e.student_id, e.direction) for e in self.sent]
        assert len(events) == 1, f"one {who} event expected; the gate sent {sent}\n{self.gate_log}"
        return events[0]


def face_of(engine: FaceEngine, path: Path) -> Face:
    """A photo and the box of its largest face."""
    photo = read_image(path)
    found = engine.detect(photo)
    widest = int(np.argmax(found.boxes[:, 2] - found.boxes[:, 0]))
    return photo, tuple(float(v) for v in found.boxes[widest])


def alive(school: LiveSchool) -> bool:
    """True while the server runs; RuntimeError with its log if it has ended."""
    if school.process is not None and school.process.poll() is not None:
        raise RuntimeError(f"the server exited:\n{school.log()}")
    return True


def stored_events(school: LiveSchool) -> dict[uuid.UUID, RawEvent]:
    with Session(school.engine) as db:
        gate_id = school.world.devices[GATE].id
        rows = db.exec(select(RawEvent).where(RawEvent.device_id == gate_id)).all()
    return {row.event_id: row for row in rows}


def notifications(school: LiveSchool) -> list[Notification]:
    with Session(school.engine) as db:
        return list(db.exec(select(Notification).order_by(col(Notification.id))))


@pytest.fixture(scope="module")
def morning(
    tmp_path_factory: pytest.TempPathFactory,
    browser: Browser,  # skips the module, saying why, before anything starts
    faces_dir: Path,
    default_pack: Pack,
) -> Iterator[Morning]:
    """Enroll, subscribe, let the student and then a stranger walk past the gate, and wait
    until the gate has stopped with nothing left to send and the server has done its part."""
    folder = tmp_path_factory.mktemp("e2e")
    school = LiveSchool.create(tmp_path_factory.mktemp("school"))
    phone = Phone(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
    push = FakePushService(phone, school.vapid.public)
    push_server = HttpServer(push)
    push.origin = push_server.url
    gate: GateProcess | None = None
    feed = CameraFeed(folder / "camera.avi")
    try:
        models = {"CAMPUSGATE_SERVER__FACES__MODELS_DIR": str(default_pack.root.parent)}
        school.start(timeout=WAIT_S, settings=models)
        child = school.parent_child
        assert child is not None

        subscribe_phone(school, phone.subscription(push_server.url + PHONE))
        gallery = enroll(school, child, [faces_dir / p for p in ENROLLED])

        face_engine = FaceEngine(default_pack, threads=2)
        walk = [face_of(face_engine, faces_dir / p) for p in (WALKER, STRANGER)]
        video = make_walks_video(walk, folder / "walk.avi", seconds=3.0, fps=15.0, tail_s=2.0)

        give_gate_its_secret(school, GATE)
        tap = EventTap(school, GATE)
        gate = GateProcess(folder / GATE, school, GATE, feed.path, default_pack.root.parent)

        def until(condition, what: str) -> None:
            running = gate.running
            try:
                school.wait_until(lambda: alive(school) and running() and condition(), what, WAIT_S)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n--- the gate's log ---\n{gate.log()}") from None

        def gate_version() -> int | None:
            with Session(school.engine) as db:
                return db.get(Device, school.world.devices[GATE].id).gallery_version

        # The gate reports the version it holds in its status, which ingest records.
        until(lambda: gate_version() == gallery["version"], "the gate to hold the new gallery")
        feed.play(video)
        until(
            lambda: any(e.student_id == child.code for e in tap.seen()) and push.delivered,
            "the student's event and the parent's push",
        )
        until(lambda: any(e.student_id is None for e in tap.seen()), "the stranger's event")
        # Only then end the video: a gate stopped earlier keeps unconfirmed events for its next
        # start, and this morning has no next start.
        until(lambda: gate.outbox_depth() == 0, "the gate's outbox to empty")
        feed.close()
        exit_code = gate.wait(WAIT_S)
        school.wait_until(
            lambda: (
                set(stored_events(school)) >= {e.event_id for e in tap.seen()}
                and all(n.status == NotificationStatus.ACCEPTED for n in notifications(school))
            ),
            "every event the gate sent stored, every message sent",
            WAIT_S,
        )
        yield Morning(
            school,
            child,
            push,
            gallery["version"],
            list({event.event_id: event for event in tap.seen()}.values()),
            exit_code,
            gate.outbox_depth(),
            gate.log(),
        )
    finally:
        feed.close()
        if gate is not None:
            gate.stop()
        push_server.stop()
        school.stop()


def test_the_walk_is_one_event_of_the_student_sent_over_mqtt_and_stored(morning: Morning) -> None:
    event = morning.walker()
    assert (event.kind, event.device, event.direction) == ("face", GATE, "in")
    assert event.gallery_version == morning.gallery_version
    assert event.score is not None and event.latency_ms > 0
    stored = stored_events(morning.school)
    sent = {e.event_id for e in morning.sent}
    assert set(stored) == sent, f"stored {sorted(map(str, stored))}, sent {sorted(map(str, sent))}"
    row = stored[event.event_id]
    assert (row.student_id, row.outcome) == (morning.child.id, EventOutcome.COUNTED)
    # The gate stopped by itself at the end of the video, with nothing left to send.
    assert morning.gate_exit_code == 0, morning.gate_log
    assert morning.gate_outbox_depth == 0, morning.gate_log


def test_the_student_is_present_for_today_s_session(morning: Morning) -> None:
    event = morning.walker()
    school = morning.school
    with Session(school.engine) as db:
        rows = db.exec(select(Attendance).where(Attendance.student_id == morning.child.id)).all()
    [attendance] = rows
    assert attendance.status == AttendanceStatus.PRESENT
    assert attendance.date == event.ts.astimezone(school.world.school.zone).date()
    assert attendance.session_id == school.world.morning.id
    assert attendance.first_in == event.ts


def test_the_parent_s_phone_gets_one_push_saying_in_vietnamese_that_the_child_arrived(
    morning: Morning,
) -> None:
    event = morning.walker()
    assert len(morning.push.delivered) == 1, morning.push.delivered
    [(request, claims, payload)] = morning.push.delivered
    assert request.path == PHONE
    assert claims["sub"] == "mailto:admin@school-a.edu.vn"
    local = event.ts.astimezone(morning.school.world.school.zone)
    name, class_name = morning.child.full_name, morning.school.world.school_class.name
    assert payload["title"] == f"{name} đã đến trường"
    assert payload["body"] == (
        f"Học sinh {name}, lớp {class_name}, đã đến trường lúc {local:%H:%M} ngày "
        f"{local:%d/%m/%Y} tại {GATE_NAME}."
    )
    [notification] = notifications(morning.school)
    assert (notification.student_id, notification.channel) == (morning.child.id, "push")
    assert notification.event_id == event.event_id
    assert notification.status == NotificationStatus.ACCEPTED
    assert payload["tag"] == notification.idempotency_key


def test_the_teacher_s_roll_shows_the_student_present_at_the_gate(
    morning: Morning,
    browser: Browser,
) -> None:
    event = morning.walker()
    school = morning.school
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    try:
        page: Page = context.new_page()
        sign_in(page, school, LiveSchool.TEACHER)
        page.get_by_role("link", name="Mở điểm danh").click()
        row = page.locator(f"#student-{morning.child.id}")
        expect(row).to_have_attribute("data-status", "present")
        expect(row).to_contain_text(morning.child.full_name)
        expect(row).to_contain_text("Có mặt")
        local = event.ts.astimezone(school.world.school.zone)
        expect(row.locator(".in")).to_have_text(f"{local:%H:%M} · {GATE_NAME}")
    finally:
        context.close()


def test_a_stranger_is_an_unknown_event_and_nobody_is_told(morning: Morning) -> None:
    stranger = morning.stranger()
    assert (stranger.kind, stranger.device, stranger.card_uid) == ("face", GATE, None)
    row = stored_events(morning.school)[stranger.event_id]
    assert (row.student_id, row.outcome) == (None, EventOutcome.UNKNOWN_FACE)
    # The one message of the morning is the student's.
    assert [n.event_id for n in notifications(morning.school)] == [morning.walker().event_id]
    assert len(morning.push.delivered) == 1
