"""The dispatcher against real local providers: sent once, retried with backoff, failed over to
the guardian's next channel, never lost when a dispatcher dies, never sent twice by two."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from server.db import create_db_engine
from server.models import Student, StudentGuardian, utc_now
from server.notify.channel import Channel, Delivery, Outgoing
from server.notify.dispatcher import ChannelBook, Dispatcher, dispatch_loop, retry_delay
from server.notify.models import (
    Notification,
    NotificationPolicy,
    NotificationPreference,
    NotificationStatus,
    PushSubscription,
)
from server.notify.outbox import AttendanceChange, enqueue_for_changes
from server.notify.push_subscriptions import subscribe
from server.notify.templates import MessageKind
from tests.server.conftest import World, fresh
from tests.server.notify.family import (
    NOW,
    SETTINGS,
    Clock,
    Push,
    Recorder,
    Sms,
    add_guardian,
    dispatcher,
    gate_event,
    outbox,
    school_today,
    start_push,
    start_sms,
    through_gate,
)
from tests.server.notify.servers import HttpServer, Reply, Request
from tests.server.notify.test_esms import API_KEY, BRANDNAME, PATH, SECRET_KEY, FakeEsms
from tests.server.notify.test_esms import channel as esms_channel

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def sms(http_server: Callable[..., HttpServer]) -> Sms:
    return start_sms(http_server, timeout_s=0.5)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def esms_settings(sms: Sms) -> dict[str, object]:
    """The settings of a channel on the local eSMS, as a server reads them."""
    return {
        "kind": "esms",
        "url": sms.server.url + PATH,
        "api_key": API_KEY,
        "secret_key": SECRET_KEY,
        "brandname": BRANDNAME,
        "timeout_s": 2,
    }


def announce(db: Session, student: Student, day: date | None = None, at=NOW) -> None:
    """Queue an "arrived" message about ``student`` (on ``day``), as of the test clock."""
    change = AttendanceChange(student.id, MessageKind.ARRIVED, at, day=day, gate="gate-1")
    enqueue_for_changes(db, [change], now=at)
    db.commit()


def test_an_accepted_message_records_the_providers_id(
    db: Session, engine: Engine, world: World, sms: Sms, clock: Clock
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912 345 678")
    announce(db, world.students[0])
    with dispatcher(engine, sms.channel, clock=clock) as worker:
        assert worker.run_once() == 1
        assert worker.run_once() == 0
    [row] = outbox(db)
    [sent] = sms.fake.sent
    assert (row.status, row.attempts, row.sent_at) == ("accepted", 1, NOW)
    assert row.claimed_by is None and row.provider_id and len(row.provider_id) == 32
    assert sent["Phone"] == "0912345678" and sent["RequestId"] == row.idempotency_key
    assert sent["Content"].startswith("Truong THPT school-a: Hoc sinh 1 (10A1) da den truong")


def test_a_temporary_failure_is_retried_after_a_backoff_then_sent(
    db: Session, engine: Engine, world: World, sms: Sms, clock: Clock
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678")
    announce(db, world.students[0])
    sms.fake.balance_ok = False
    with dispatcher(engine, sms.channel, clock=clock) as worker:
        worker.run_once()
        [row] = outbox(db)
        assert (row.status, row.attempts) == ("queued", 1) and "balance" in row.last_error
        assert NOW <= row.next_attempt_at <= NOW + timedelta(seconds=SETTINGS.retry_base_s)
        assert worker.run_once() == 0  # not due yet
        sms.fake.balance_ok = True
        clock.advance(SETTINGS.retry_base_s)
        assert worker.run_once() == 1
    [row] = outbox(db)
    assert (row.status, row.attempts, row.last_error) == ("accepted", 2, None)
    assert len(sms.fake.sent) == 1


def test_backoff_doubles_with_full_jitter_up_to_the_cap_and_honours_retry_after() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (12, 100)]:
        delays = [retry_delay(attempt, SETTINGS, None, rng) for _ in range(300)]
        assert 0 <= min(delays) < ceiling / 4 and ceiling * 3 / 4 < max(delays) <= ceiling
    assert retry_delay(1, SETTINGS, 120.0, rng) == 120.0


def test_a_provider_that_does_not_answer_in_time_is_asked_again(
    db: Session, engine: Engine, world: World, sms: Sms, clock: Clock
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678")
    announce(db, world.students[0])
    sms.fake.script.append(Reply(stall=True))
    with dispatcher(engine, sms.channel, clock=clock) as worker:
        worker.run_once()
        [row] = outbox(db)
        assert row.status == "queued" and "no reply" in row.last_error
        clock.advance(SETTINGS.retry_max_s)
        worker.run_once()
    [row] = outbox(db)
    assert row.status == "accepted"
    assert [r.json()["RequestId"] for r in sms.server.requests] == [row.idempotency_key] * 2


def test_permanent_failures_move_the_message_along_the_guardians_channels(
    db: Session, engine: Engine, world: World, sms: Sms, clock: Clock
) -> None:
    # No "zalo" channel is configured, eSMS refuses the blocked number, the backup takes it.
    channels = ("zalo", "sms", "backup")
    guardian = add_guardian(db, world.students[0], "Mai", phone="0987654321", channels=channels)
    announce(db, world.students[0])
    backup = Recorder("backup")
    with dispatcher(engine, sms.channel, backup, clock=clock) as worker:
        while worker.run_once():
            pass
    zalo, esms, last = outbox(db)
    assert (zalo.status, esms.status, last.status) == ("failed", "failed", "accepted")
    assert "not configured" in zalo.last_error and "blocked" in esms.last_error
    assert (esms.fallback_of, last.fallback_of) == (zalo.id, esms.id)
    assert {row.guardian_id for row in (zalo, esms, last)} == {guardian.id}
    assert esms.idempotency_key == zalo.idempotency_key.removesuffix("zalo") + "sms"
    [message] = backup.sent
    assert message.text == zalo.text and message.idempotency_key == last.idempotency_key


def test_giving_up_after_max_attempts_falls_back_to_the_next_channel(
    db: Session, engine: Engine, world: World, sms: Sms, clock: Clock
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678", channels=("sms", "b"))
    announce(db, world.students[0])
    sms.fake.balance_ok = False
    backup = Recorder("b")
    with dispatcher(engine, sms.channel, backup, clock=clock) as worker:
        for _ in range(SETTINGS.max_attempts):
            worker.run_once()
            clock.advance(SETTINGS.retry_max_s)
        worker.run_once()
    failed, fallback = outbox(db)
    assert (failed.status, failed.attempts) == ("failed", SETTINGS.max_attempts)
    assert failed.last_error.startswith(f"gave up after {SETTINGS.max_attempts} attempts")
    assert fallback.status == "accepted" and len(backup.sent) == 1


def test_a_push_subscription_the_service_says_is_gone_is_deleted(
    db: Session, engine: Engine, world: World, sms: Sms, http_server: Callable, clock: Clock
) -> None:
    push = start_push(http_server)
    guardian = add_guardian(
        db, world.students[0], "Trần Thị Mai", phone="0912345678", channels=("push", "sms")
    )
    subscribe(db, guardian.id, push.browser.subscription(push.endpoint()))
    db.commit()
    push.fake.script.append(Reply(410, "push subscription has unsubscribed or expired"))
    announce(db, world.students[0])
    with dispatcher(engine, push.channel, sms.channel, clock=clock) as worker:
        worker.run_once()
        worker.run_once()
    gone, fallback = outbox(db)
    assert gone.status == "failed" and "gone" in gone.last_error
    assert fresh(db).exec(select(PushSubscription)).all() == []
    assert (fallback.channel, fallback.status) == ("sms", "accepted")


def test_a_guardian_gets_only_their_own_childrens_messages(
    db: Session, engine: Engine, world: World, sms: Sms, clock: Clock
) -> None:
    first, second = world.students[0], world.students[1]
    second.full_name = "Phạm Minh Châu"
    db.add(second)
    add_guardian(db, first, "Trần Thị Mai", phone="0912000001")
    add_guardian(db, second, "Lê Thị Hoa", phone="0912000002")
    unlinked = add_guardian(db, first, "Đỗ Văn Nam", phone="0912000003")
    announce(db, first)
    announce(db, second)
    db.exec(delete(StudentGuardian).where(StudentGuardian.guardian_id == unlinked.id))
    db.commit()
    with dispatcher(engine, sms.channel, clock=clock) as worker:
        worker.run_once()
    received = {sent["Phone"]: sent["Content"] for sent in sms.fake.sent}
    assert set(received) == {"0912000001", "0912000002"}
    assert "Hoc sinh 1" in received["0912000001"] and "Chau" not in received["0912000001"]
    assert "Pham Minh Chau" in received["0912000002"] and "Hoc sinh 1" not in received["0912000002"]
    skipped = fresh(db).exec(select(Notification).where(Notification.guardian_id == unlinked.id))
    assert [(row.status, row.reason) for row in skipped] == [
        ("skipped", "the guardian is no longer linked to the student")
    ]


def test_a_switch_thrown_or_a_choice_changed_after_queueing_stops_the_waiting_messages(
    db: Session, engine: Engine, world: World, clock: Clock
) -> None:
    first, second = world.students[0], world.students[1]
    add_guardian(db, first, "Trần Thị Mai", channels=("zalo",))
    choosy = add_guardian(db, second, "Lê Thị Hoa", channels=("zalo",))
    for student in (first, second):
        changes = [
            AttendanceChange(student.id, MessageKind.ARRIVED, NOW, gate="gate-1"),
            AttendanceChange(student.id, MessageKind.LEFT, NOW, gate="gate-1"),
        ]
        enqueue_for_changes(db, changes, now=NOW)
    db.commit()
    assert [row.status for row in outbox(db)] == ["queued"] * 4

    # The school stops "left" messages; Lê Thị Hoa then keeps only "left" ones.
    db.add(NotificationPolicy(school_id=world.school.id, disabled_kinds=["left"]))
    db.add(NotificationPreference(guardian_id=choosy.id, kinds=["left"]))
    db.commit()
    zalo = Recorder("zalo")
    with dispatcher(engine, zalo, clock=clock) as worker:
        worker.run_once()
    assert [(m.kind, m.fields["student_name"]) for m in zalo.sent] == [("arrived", "Học sinh 1")]
    outcome = {(row.student_id, row.kind): (row.status, row.reason) for row in outbox(db)}
    assert outcome[(first.id, "left")] == ("skipped", "the school has turned off 'left' messages")
    assert outcome[(second.id, "left")] == ("skipped", "the school has turned off 'left' messages")
    assert outcome[(second.id, "arrived")] == (
        "skipped",
        "the guardian does not want 'arrived' messages",
    )


def test_two_dispatchers_on_one_outbox_send_each_message_exactly_once(
    db: Session, db_url: str, world: World, sms: Sms
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678")
    now = utc_now()
    for n in range(40):  # forty school days' arrivals
        announce(db, world.students[0], day=now.date() - timedelta(days=n), at=now)
    stop = threading.Event()
    engines = [create_db_engine(db_url) for _ in range(2)]  # separate connections
    workers = [Dispatcher(e, ChannelBook({"sms": sms.channel}), SETTINGS) for e in engines]
    threads = [threading.Thread(target=worker.run, args=(stop,)) for worker in workers]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(sms.fake.sent) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for worker, engine in zip(workers, engines, strict=True):
            worker.close()
            engine.dispose()
    requests = Counter(request.json()["RequestId"] for request in sms.server.requests)
    assert len(requests) == 40 and set(requests.values()) == {1}
    rows = outbox(db)
    # A send that timed out on a loaded machine is retried (attempts 2) but reached eSMS once.
    assert {(row.status, row.claimed_by) for row in rows} == {("accepted", None)}
    assert len({row.provider_id for row in rows}) == 40


def test_a_dispatcher_killed_mid_batch_resends_with_the_same_keys_and_each_is_delivered_once(
    db: Session, db_url: str, engine: Engine, world: World, http_server: Callable
) -> None:
    fake, lock, all_in = FakeEsms(), threading.Lock(), threading.Event()

    def provider(request: Request) -> Reply:
        with lock:
            reply = fake(request)  # eSMS takes every message: the parents' phones will ring
            first = len(fake.request_ids) == 1
            if len(fake.request_ids) == 3:
                all_in.set()
        # ... but the dispatcher dies waiting for the first answer, before recording any.
        return Reply(stall=True) if first else reply

    server = http_server(provider)
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678")
    now = utc_now()
    for days in range(3):
        announce(db, world.students[0], day=now.date() - timedelta(days=days), at=now)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.server.notify.dispatch_worker", db_url, server.url + PATH],
        cwd=ROOT,
        env=env,
    )
    try:
        assert all_in.wait(60), "the dispatcher never sent the whole batch"
    finally:
        worker.kill()  # SIGKILL: no cleanup, no last commit
        worker.wait()
    rows = outbox(db)
    assert {(row.status, row.attempts) for row in rows} == {(NotificationStatus.SENDING, 1)}

    after_the_lease = Clock(utc_now() + timedelta(seconds=SETTINGS.lease_s + 1))
    with dispatcher(engine, esms_channel(server), clock=after_the_lease) as restarted:
        assert restarted.run_once() == 3
    rows = outbox(db)
    assert {(row.status, row.attempts) for row in rows} == {("accepted", 2)}
    sent_ids = Counter(r.json()["RequestId"] for r in server.requests)
    assert sent_ids == {row.idempotency_key: 2 for row in rows}  # each sent again, same key
    assert len(fake.sent) == 3  # ... and recognised by eSMS: each parent got it once


def test_web_push_from_the_gate_to_the_parents_browser(
    db: Session, engine: Engine, http_server: Callable
) -> None:
    """Attendance change → outbox → dispatcher → push service → decrypted in the browser."""
    today = school_today(db)
    push: Push = start_push(http_server)
    child = today.students[0]
    child.full_name = "Nguyễn Thị Ánh"
    db.add(child)
    guardian = add_guardian(db, child, "Trần Thị Mai", channels=("push",))
    subscribe(db, guardian.id, push.browser.subscription(push.endpoint()), "Firefox/133")
    db.commit()
    arrived = utc_now()
    through_gate(db, today, gate_event(child, arrived))
    db.commit()
    with dispatcher(engine, push.channel, clock=utc_now) as worker:
        assert worker.run_once() == 1
    [(request, _, payload)] = push.fake.delivered
    local = arrived.astimezone(today.school.zone)
    assert payload["title"] == "Nguyễn Thị Ánh đã đến trường"
    assert payload["body"] == (
        f"Học sinh Nguyễn Thị Ánh, lớp 10A1, đã đến trường lúc {local:%H:%M} ngày "
        f"{local:%d/%m/%Y} tại Cổng chính."
    )
    assert payload["url"] == SETTINGS.public_url
    [row] = outbox(db)
    assert row.status == "accepted" and row.provider_id == f"{push.server.url}/m/1"
    assert payload["tag"] == row.idempotency_key and request.path == "/push/phone"
    [device] = fresh(db).exec(select(PushSubscription)).all()
    assert device.last_success_at is not None


def test_the_servers_loop_sends_with_the_configured_channels_and_stops_cleanly(
    db: Session, engine: Engine, world: World, sms: Sms
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678")
    add_guardian(db, world.students[1], "Lê Thị Hoa", phone="0912000002")
    other_schools_sms = esms_settings(sms) | {"url": "http://127.0.0.1:9/", "brandname": "KHAC"}
    settings = SETTINGS.model_validate(
        SETTINGS.model_dump()
        | {
            "channels": {"sms": esms_settings(sms)},
            "school_channels": {world.school.id + 1: {"sms": other_schools_sms}},
        }
    )
    now = utc_now()
    announce(db, world.students[0], at=now)
    announce(db, world.students[1], at=now)
    stop = threading.Event()
    loop = threading.Thread(target=dispatch_loop, args=(engine, settings, stop))
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while len(sms.fake.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join()
    assert {(row.status, row.claimed_by) for row in outbox(db)} == {("accepted", None)}
    assert {sent["Phone"] for sent in sms.fake.sent} == {"0912345678", "0912000002"}


def test_campusgate_server_notify_runs_a_dispatcher_until_sigterm(
    db: Session, db_url: str, world: World, sms: Sms
) -> None:
    """The command a deployment starts once per extra dispatcher."""
    add_guardian(db, world.students[0], "Trần Thị Mai", phone="0912345678")
    announce(db, world.students[0], at=utc_now())
    env = os.environ | {
        "CAMPUSGATE_SERVER__DATABASE_URL": db_url,
        "CAMPUSGATE_SERVER__NOTIFY": json.dumps({"channels": {"sms": esms_settings(sms)}}),
    }
    command = [str(Path(sys.executable).parent / "campusgate"), "server", "notify"]
    dispatcher = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not sms.fake.sent and dispatcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        _, log = dispatcher.communicate(timeout=60)
    assert dispatcher.returncode == 0, log
    assert [sent["Phone"] for sent in sms.fake.sent] == ["0912345678"]
    assert {(row.status, row.claimed_by) for row in outbox(db)} == {("accepted", None)}


class Stuck(Channel):
    """A provider that hangs until released, then refuses: a dispatcher stuck past its lease."""

    kind = "stuck"
    address = "phone"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.called, self.release = threading.Event(), threading.Event()

    def send(self, message: Outgoing) -> Delivery:
        self.called.set()
        self.release.wait(30)
        return Delivery.permanent("refused, too late to matter")


def test_a_dispatcher_that_outlived_its_lease_does_not_overwrite_the_newer_attempt(
    db: Session, engine: Engine, world: World
) -> None:
    add_guardian(db, world.students[0], "Trần Thị Mai", channels=("sms", "backup"))
    announce(db, world.students[0])
    stuck, recorder = Stuck("sms"), Recorder("sms")
    with dispatcher(engine, stuck, Recorder("backup")) as slow:
        first = threading.Thread(target=slow.run_once)
        first.start()
        try:
            assert stuck.called.wait(30)
            later = Clock(NOW + timedelta(seconds=SETTINGS.lease_s + 1))
            with dispatcher(engine, recorder, clock=later) as fast:
                assert fast.run_once() == 1
        finally:
            stuck.release.set()
            first.join()
    [row] = outbox(db)  # no fallback row from the late "permanent"
    assert (row.status, row.attempts, row.provider_id) == ("accepted", 2, "rec-1")
