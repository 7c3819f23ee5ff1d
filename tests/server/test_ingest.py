"""Ingest against a real Mosquitto (project config, TLS gates) on both databases."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from broker.codec import decode, encode
from broker.managed import MosquittoInstance, connect
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import Event, Receipt, Status, Telemetry
from broker.topics import Channel, device_topic
from server import ingest
from server.core.config import MqttSection, ServerSettings
from server.ingest import IngestWorker
from server.models import Attendance, Device, RawEvent
from tests.server.conftest import World, fresh, make_school
from tests.server.crash_worker import CRASH_STATUS

MONDAY_7AM = datetime(2025, 10, 6, 0, 0, tzinfo=UTC)  # 07:00 in Hanoi, a school day


def settings_for(
    broker: MosquittoInstance, db_url: str, client_id: str = "ingest"
) -> ServerSettings:
    return ServerSettings(
        database_url=db_url,
        mqtt=MqttSection(
            port=broker.port(tls=False),
            password=SecretStr(broker.passwords[SERVER_USERNAME]),
            client_id=client_id,
        ),
    )


@pytest.fixture
def start_worker(mosquitto: MosquittoInstance, engine: Engine, db_url: str) -> Iterator[Callable]:
    """Start ingest workers on the test broker and database; all are stopped at teardown."""
    workers: list[IngestWorker] = []

    def start(index: int = 0, client_id: str = "ingest") -> IngestWorker:
        worker = IngestWorker(settings_for(mosquitto, db_url, client_id), engine, index=index)
        worker.start()
        assert worker.wait_subscribed(10), "the broker did not grant the subscriptions"
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def gate(broker: MosquittoInstance, device: str = "gate-1") -> mqtt.Client:
    client = broker.client(f"school-a.{device}")
    assert connect(broker, client) == 0
    return client


def listening_gate(
    broker: MosquittoInstance, device: str = "gate-1"
) -> tuple[mqtt.Client, queue.Queue[Receipt]]:
    """A gate that also reads its receipts (one connection: the broker forces the client id to
    the username, so a second one would take the first one's session over)."""
    client = gate(broker, device)
    receipts: queue.Queue[Receipt] = queue.Queue()
    client.on_message = lambda _c, _u, m: receipts.put(decode(m.topic, m.payload).message)
    granted: queue.Queue = queue.Queue()
    client.on_subscribe = lambda _c, _u, _mid, codes, _p: granted.put(codes)
    client.subscribe(device_topic(Channel.STORED, "school-a", device), qos=1)
    assert not granted.get(timeout=5)[0].is_failure
    return client, receipts


def receipted_until(receipts: queue.Queue[Receipt], last: Event) -> list[list[str]]:
    """The event ids of each receipt received, up to and including the one naming ``last``."""
    got: list[list[str]] = []
    while not got or str(last.event_id) not in got[-1]:
        got.append([str(event_id) for event_id in receipts.get(timeout=20).event_ids])
    return got


def publish(client: mqtt.Client, device: str, payload: bytes, channel=Channel.EVENTS) -> None:
    topic = device_topic(channel, "school-a", device)
    client.publish(topic, payload, qos=1).wait_for_publish(5)


def an_event(code: str | None, device: str = "gate-1", **changes) -> Event:
    fields = dict(
        event_id=uuid.uuid4(),
        kind="face",
        ts=MONDAY_7AM,
        site="school-a",
        device=device,
        direction="in",
        student_id=code,
        score=0.9,
        track_id=1,
        model_pack="dlib-r29-mtcnn",
        latency_ms=40.0,
    )
    return Event(**(fields | changes))


def handled(*workers: IngestWorker) -> int:
    return sum(w.stats.stored + w.stats.duplicates + w.stats.rejected for w in workers)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def count(db: Session, model) -> int:
    return fresh(db).exec(select(func.count()).select_from(model)).one()


def test_events_are_stored_and_counted_and_never_redelivered_once_acknowledged(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    worker = start_worker()
    client = gate(mosquitto)
    for code in ("HS1", "HS2", None):
        publish(client, "gate-1", encode(an_event(code)))
    wait_for(lambda: worker.stats.stored == 3, "three events stored")
    assert count(db, RawEvent) == 3
    outcomes = sorted(r.outcome for r in db.exec(select(RawEvent)))
    assert outcomes == ["counted", "counted", "unknown_face"]
    assert {(a.student_id, a.status) for a in db.exec(select(Attendance))} == {
        (world.students[0].id, "present"),
        (world.students[1].id, "present"),
    }

    worker.stop()
    again = start_worker()  # the same client id: the same persistent session
    publish(client, "gate-1", encode(an_event("HS3")))
    wait_for(lambda: again.stats.stored == 1, "the next event stored")
    assert again.stats.received == 1  # nothing acknowledged came back


def test_a_repeated_event_is_a_no_op(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    worker = start_worker()
    client = gate(mosquitto)
    first = an_event("HS1")
    publish(client, "gate-1", encode(first))
    publish(
        client, "gate-1", encode(first.model_copy(update={"ts": MONDAY_7AM - timedelta(hours=1)}))
    )
    publish(client, "gate-1", encode(first))
    wait_for(lambda: handled(worker) == 3, "three messages handled")
    assert (worker.stats.stored, worker.stats.duplicates) == (1, 2)
    assert count(db, RawEvent) == 1
    assert db.exec(select(Attendance.first_in)).one() == MONDAY_7AM


def test_a_device_claiming_another_site_is_refused(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    """The broker knows gate-2 at school-a, but the school registered it at school-b."""
    other = make_school(db, site="school-b", devices=(), students=0)
    moved = world.devices["gate-2"]
    moved.site_id = other.site.id
    db.add(moved)
    db.commit()
    worker = start_worker()
    publish(gate(mosquitto, "gate-2"), "gate-2", encode(an_event("HS1", device="gate-2")))
    publish(gate(mosquitto), "gate-1", encode(an_event("HS2")))
    wait_for(lambda: handled(worker) == 2, "both messages handled")
    assert (worker.stats.rejected, worker.stats.stored) == (1, 1)
    assert [r.payload["device"] for r in db.exec(select(RawEvent))] == ["gate-1"]
    assert count(db, Attendance) == 1


def test_bad_payloads_and_unknown_devices_are_counted_and_the_worker_continues(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    db.delete(db.get(Device, world.devices["gate-2"].id))
    db.commit()
    worker = start_worker()
    client = gate(mosquitto)
    good = json.loads(encode(an_event("HS1")))
    for payload in (
        b"\xff not json",
        json.dumps(good | {"score": 1.5}).encode(),
        json.dumps(good | {"device": "gate-2"}).encode(),  # not the topic's device
        json.dumps(good | {"unexpected": True}).encode(),
    ):
        publish(client, "gate-1", payload)
    publish(gate(mosquitto, "gate-2"), "gate-2", encode(an_event("HS1", device="gate-2")))
    publish(client, "gate-1", encode(an_event("HS1")))
    wait_for(lambda: handled(worker) == 6, "six messages handled")
    assert (worker.stats.rejected, worker.stats.stored) == (5, 1)
    assert count(db, RawEvent) == 1


def test_status_and_telemetry_update_the_device(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    worker = start_worker()
    client = gate(mosquitto)
    now = datetime.now(UTC).replace(microsecond=0)
    status = Status(
        site="school-a",
        device="gate-1",
        state="online",
        ts=now,
        version="0.1.0",
        model_pack="dlib-r29-mtcnn",
        gallery_version=7,
    )
    telemetry = Telemetry(
        site="school-a",
        device="gate-1",
        ts=now + timedelta(seconds=30),
        fps_in=15.0,
        fps_processed=5.0,
        frames_dropped=3,
        outbox_depth=0,
        mem_rss_mb=300.0,
        uptime_s=60.0,
    )
    publish(client, "gate-1", encode(status), Channel.STATUS)
    publish(client, "gate-1", encode(telemetry), Channel.TELEMETRY)
    wait_for(lambda: worker.stats.device_updates == 2, "two device updates")
    device = fresh(db).get(Device, world.devices["gate-1"].id)
    assert (device.status, device.agent_version, device.gallery_version) == ("online", "0.1.0", 7)
    assert device.last_seen_at == now + timedelta(seconds=30)
    assert device.last_telemetry["frames_dropped"] == 3


def test_a_deleted_status_is_let_go_quietly_but_an_empty_event_is_rejected(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    """gatectl deletes the retained status of a gate the broker cut off with a zero-length
    message, which the broker passes on to ingest: no bad payload, and no change to the device."""
    worker = start_worker()
    client = gate(mosquitto)
    status = Status(
        site="school-a", device="gate-1", state="online", ts=datetime.now(UTC), version="0.1.0"
    )
    status_topic = device_topic(Channel.STATUS, "school-a", "gate-1")
    client.publish(status_topic, encode(status), qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: worker.stats.device_updates == 1, "the status stored")

    service = mosquitto.client(SERVER_USERNAME, tls=False, client_id="gatectl")
    assert connect(mosquitto, service, tls=False) == 0
    service.publish(status_topic, b"", qos=1, retain=True).wait_for_publish(5)
    publish(client, "gate-1", b"", Channel.TELEMETRY)
    publish(client, "gate-1", b"")  # an event has no retained message to delete
    wait_for(lambda: handled(worker) + worker.stats.deletions == 3, "three messages handled")
    assert (worker.stats.deletions, worker.stats.rejected, worker.stats.device_updates) == (2, 1, 1)
    assert fresh(db).get(Device, world.devices["gate-1"].id).status == "online"


def test_two_workers_on_the_shared_subscription_store_each_event_once(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    workers = [start_worker(0), start_worker(1)]
    gates = {"gate-1": gate(mosquitto), "gate-2": gate(mosquitto, "gate-2")}
    events = [
        an_event(
            f"HS{n % 3 + 1}",
            device=device,
            ts=MONDAY_7AM + timedelta(minutes=n % 40),
            direction="in" if n % 4 else "out",
        )
        for n in range(120)
        for device in gates
    ]
    infos = [
        gates[e.device].publish(device_topic(Channel.EVENTS, "school-a", e.device), encode(e), 1)
        for e in events + events[:40]  # and 40 repeats
    ]
    for info in infos:
        info.wait_for_publish(10)
    wait_for(lambda: handled(*workers) == len(infos), "every message handled")
    assert all(w.stats.received > 0 for w in workers)
    assert sum(w.stats.stored for w in workers) == len(events)
    assert sum(w.stats.duplicates for w in workers) == 40
    assert count(db, RawEvent) == len(events)
    rows = db.exec(select(Attendance)).all()
    assert len(rows) == 3  # three students, one morning each
    earliest_in = min(e.ts for e in events if e.direction == "in")
    assert {r.first_in for r in rows} == {earliest_in}


def test_an_event_is_redelivered_after_the_worker_dies_before_its_commit(
    mosquitto: MosquittoInstance,
    start_worker: Callable,
    db: Session,
    world: World,
    db_url: str,
) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.server.crash_worker",
            db_url,
            str(mosquitto.port(tls=False)),
            mosquitto.passwords[SERVER_USERNAME],
            "ingest",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        publish(gate(mosquitto), "gate-1", encode(an_event("HS1")))
        assert child.wait(30) == CRASH_STATUS
    finally:
        if child.poll() is None:
            child.kill()
    assert count(db, RawEvent) == 0

    worker = start_worker()  # the crashed worker's client id, so its session
    wait_for(lambda: worker.stats.stored == 1, "the redelivered event stored")
    assert count(db, RawEvent) == 1
    assert count(db, Attendance) == 1


def test_a_database_failure_delays_but_loses_nothing(
    mosquitto: MosquittoInstance,
    start_worker: Callable,
    db: Session,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures = iter(range(2))
    real_store = ingest.store_batch

    def flaky_store(*args, **kwargs):
        if next(failures, None) is not None:
            raise OperationalError("INSERT …", {}, Exception("server closed the connection"))
        return real_store(*args, **kwargs)

    monkeypatch.setattr(ingest, "store_batch", flaky_store)
    worker = start_worker()
    publish(gate(mosquitto), "gate-1", encode(an_event("HS1")))
    wait_for(lambda: worker.stats.stored == 1, "the event stored after the failures")
    assert worker.stats.db_retries == 2
    assert count(db, RawEvent) == 1


def test_receipts_follow_the_commit_for_stored_and_repeated_events_not_rejected_ones(
    mosquitto: MosquittoInstance, start_worker: Callable, db: Session, world: World
) -> None:
    db.delete(db.get(Device, world.devices["gate-2"].id))  # the broker still knows it
    db.commit()
    worker = start_worker()
    client, receipts = listening_gate(mosquitto)
    stored = an_event("HS1")
    publish(client, "gate-1", encode(stored))
    assert receipted_until(receipts, stored) == [[str(stored.event_id)]]
    assert count(db, RawEvent) == 1  # committed before its receipt left

    # A gate that did not hear the receipt sends again: the repeat is answered too.
    repeat = stored.model_copy(update={"ts": MONDAY_7AM - timedelta(hours=1)})
    publish(client, "gate-1", encode(repeat))
    assert receipted_until(receipts, repeat) == [[str(stored.event_id)]]

    bad = json.loads(encode(an_event("HS2"))) | {"score": 1.5}
    publish(client, "gate-1", json.dumps(bad).encode())
    stranger, _ = listening_gate(mosquitto, "gate-2")
    publish(stranger, "gate-2", encode(an_event("HS2", device="gate-2")))
    wait_for(lambda: worker.stats.rejected == 2, "both rejected")
    marker = an_event("HS3")
    publish(client, "gate-1", encode(marker))
    assert receipted_until(receipts, marker) == [[str(marker.event_id)]]
    worker.stop()
    # Receipts leave the worker in order and gate-1 had each of its own before the marker's:
    # had gate-2's rejected event been answered, the worker would have sent one more.
    assert worker.stats.receipts == 3
    assert (worker.stats.stored, worker.stats.duplicates, worker.stats.rejected) == (2, 1, 2)


def test_no_receipt_leaves_before_the_commit(
    mosquitto: MosquittoInstance,
    start_worker: Callable,
    db: Session,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failures = iter(range(2))
    real_store = ingest.store_batch

    def store_then_fail(*args, **kwargs):
        handled = real_store(*args, **kwargs)  # all written, then the commit never happens
        if next(failures, None) is not None:
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return handled

    monkeypatch.setattr(ingest, "store_batch", store_then_fail)
    worker = start_worker()
    client, receipts = listening_gate(mosquitto)
    first, second = an_event("HS1"), an_event("HS2")
    publish(client, "gate-1", encode(first))
    wait_for(lambda: worker.stats.stored == 1, "the event stored after the failures")
    publish(client, "gate-1", encode(second))

    # One receipt per event, after the commit that stored it: none for the rolled-back tries.
    assert receipted_until(receipts, second) == [[str(first.event_id)], [str(second.event_id)]]
    assert worker.stats.db_retries == 2
    assert count(db, RawEvent) == 2
