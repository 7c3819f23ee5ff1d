"""``campusgate bench ingest``: gates → Mosquitto → the server's ingest → the database.

A real Mosquitto from the project's templates (TLS, one credential per gate, ACL), the server's
own ingest workers (each in its own process, as a deployment runs them), and N simulated gates,
each a paho client on its own thread publishing its share of M events at QoS 1 as fast as the
broker takes them. A share of the events is published twice, as a gate does after a lost PUBACK.

Latency is publish → committed: a gate stamps ``ts`` just before publishing, the worker reads the
clock right after the transaction holding the event committed. Throughput is events stored over
the time from the first publish to the last commit. ``lost`` counts events the broker
acknowledged to a gate that never reached the database; ``double_counted`` counts event ids
stored more than once plus attendance rows beyond one per student and session.
``cpu_us_per_event`` says where the machine's CPU went: the simulated gates, the broker, and
the ingest workers once started (a PostgreSQL server's own CPU is not counted). The gates publish
faster than ingest writes, so the latency figures include the queue that builds in the broker.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import select as io_select
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from benchmarks.notify import NotifyProbe
from benchmarks.stats import percentiles_ms
from broker.codec import encode
from broker.managed import MosquittoInstance, start_mosquitto
from broker.mosquitto_config import SERVER_USERNAME, DeviceAccount
from broker.payloads import Event, utc_now
from broker.topics import Channel, device_topic
from server.core.config import MqttSection, ServerSettings
from server.db import create_database, create_db_engine, database_url, drop_database
from server.ingest import Handled, Result, run_worker
from server.migrations import upgrade
from server.models import (
    Attendance,
    Card,
    Device,
    RawEvent,
    School,
    SchoolSession,
    SchoolYear,
    Site,
    Student,
    Term,
)

SITE = "bench"
STUDENTS = 2_000
DRAIN_TIMEOUT_S = 60.0
POLL_S = 0.05


def _card_uid(n: int) -> str:
    return f"04{n:012X}"


def seed(engine: Engine, gates: int, students: int = STUDENTS) -> None:
    """A school of ``students`` whose single session spans every day, so every event counts for
    attendance."""
    today = datetime.now(UTC).date()
    with Session(engine) as db:
        school = School(name="Trường THPT Benchmark", school_weekdays="1234567")
        db.add(school)
        db.flush()
        site = Site(code=SITE, name="Cổng chính", school_id=school.id)
        year = SchoolYear(
            school_id=school.id,
            name="bench",
            starts_on=today - timedelta(days=2),
            ends_on=today + timedelta(days=2),
        )
        db.add_all([site, year])
        db.flush()
        db.add(
            Term(
                school_year_id=year.id, name="bench", starts_on=year.starts_on, ends_on=year.ends_on
            )
        )
        db.add(
            SchoolSession(
                school_id=school.id,
                code="day",
                name="Cả ngày",
                start=day_time(0, 0),
                late_after=day_time(7, 0),
                absent_after=day_time(23, 59, 58),
                end=day_time(23, 59, 59, 999_999),
            )
        )
        db.add_all(
            Device(site_id=site.id, device_id=_gate(n), credential_id=f"{SITE}.{_gate(n)}")
            for n in range(gates)
        )
        pupils = [
            Student(code=f"B{n:05d}", full_name=f"Học sinh {n}", school_id=school.id)
            for n in range(students)
        ]
        db.add_all(pupils)
        db.flush()
        db.add_all(Card(uid=_card_uid(n), student_id=s.id) for n, s in enumerate(pupils))
        db.commit()


def _gate(n: int) -> str:
    return f"gate-{n:03d}"


def _event(n: int, device: str, students: int) -> Event:
    """Event ``n``: students in turn; every fifth a card tap; first pass in, the next out."""
    student = n % students
    direction = "in" if (n // students) % 2 == 0 else "out"
    common = dict(
        event_id=uuid.uuid4(),
        ts=utc_now(),
        site=SITE,
        device=device,
        direction=direction,
        latency_ms=120.0,
    )
    if n % 5 == 0:
        return Event(kind="card", card_uid=_card_uid(student), **common)
    return Event(
        kind="face",
        student_id=f"B{student:05d}",
        score=0.91,
        track_id=n,
        quality=0.8,
        model_pack="dlib-r29-mtcnn",
        gallery_version=1,
        **common,
    )


class _Gate:
    """One simulated gate: its own MQTT client and credential, and the events it still owes.

    Like the gate's real link it keeps at most ``WINDOW`` events handed over and not yet
    acknowledged, so ``ts`` (stamped when an event is handed over) is when it left the gate.
    """

    WINDOW = 20

    def __init__(
        self,
        broker: MosquittoInstance,
        device: str,
        numbers: range,
        repeat_every: int,
        students: int,
        due: Callable[[int], float] | None = None,
    ):
        self.device = device
        self.topic = device_topic(Channel.EVENTS, SITE, device)
        self.todo = iter(numbers)
        self.next_n: int | None = next(self.todo, None)
        self.due = due
        self.students = students
        self.repeat_every = repeat_every
        self.unacked: dict[int, bool] = {}  # mid -> is a repeat
        self.sent = 0
        self.repeats = 0
        self.finished = False
        self.client = broker.client(f"{SITE}.{device}")
        self.client.on_publish = self._on_publish
        self.connected = False
        self.client.on_connect = lambda *_: setattr(self, "connected", True)
        self.client.connect("127.0.0.1", broker.port(tls=True), keepalive=60)

    def fill(self, now: float) -> None:
        """Hand events over until the window is full, nothing is left, or (paced) the next
        event is not due yet at ``now`` (``time.monotonic()``)."""
        while not self.finished and len(self.unacked) < self.WINDOW:
            n = self.next_n
            if n is None:
                self.finished = True
                return
            if self.due is not None and self.due(n) > now:
                return
            self.next_n = next(self.todo, None)
            payload = encode(_event(n, self.device, self.students))
            self.unacked[self.client.publish(self.topic, payload, qos=1).mid] = False
            if self.repeat_every and n % self.repeat_every == 0:
                self.unacked[self.client.publish(self.topic, payload, qos=1).mid] = True

    @property
    def done(self) -> bool:
        return self.finished and not self.unacked

    def _on_publish(self, _client, _userdata, mid: int, _reason, _properties) -> None:
        repeat = self.unacked.pop(mid, None)
        if repeat is not None:
            self.repeats += repeat
            self.sent += not repeat


def _until_due(gate: _Gate, now: float) -> float:
    """Seconds until ``gate`` has an event to hand over (at most :data:`POLL_S`)."""
    if gate.due is None or gate.next_n is None:
        return POLL_S
    return min(POLL_S, max(0.0, gate.due(gate.next_n) - now))


def _drive(
    gates: list[_Gate], until: Callable[[], bool], timeout: float = 120.0, fill: bool = True
) -> None:
    """Run every gate's network I/O from this one thread (a thread per gate would spend the
    benchmark's CPU fighting over the GIL) until ``until()`` holds; ``fill`` False only
    connects (no event leaves before the clock starts)."""
    sockets = {gate.client.socket(): gate for gate in gates}
    deadline = time.monotonic() + timeout
    next_misc = 0.0
    while not until():
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError("the simulated gates stalled")
        for gate in gates:
            if gate.connected and fill:
                gate.fill(now)
        buffered = [sock for sock in sockets if sock.pending()]
        writers = [sock for sock, gate in sockets.items() if gate.client.want_write()]
        # Paced gates wake for their next due event; otherwise only the sockets matter.
        wait = min((_until_due(gate, now) for gate in gates), default=POLL_S)
        readable, writable, _ = io_select.select(
            list(sockets), writers, [], 0 if buffered else wait
        )
        for sock in set(readable) | set(buffered):
            sockets[sock].client.loop_read(100)
        for sock in writable:
            sockets[sock].client.loop_write()
        if time.monotonic() > next_misc:
            for gate in gates:
                gate.client.loop_misc()
            next_misc = time.monotonic() + 1.0


def _worker_main(url: str, mqtt: dict[str, Any], index: int, ready, stop, results) -> None:
    """One ingest worker process: reports each stored event's latency once stopped."""
    latencies: list[float] = []
    last_commit = [0.0]

    def committed(handled: list[Handled]) -> None:
        now = time.time()
        last_commit[0] = now
        latencies.extend(
            now - h.decoded.message.ts.timestamp()
            for h in handled
            if h.result is Result.STORED and h.decoded is not None
        )

    cpu_at_ready = [0.0]

    def subscribed(ok: bool) -> None:
        cpu_at_ready[0] = time.process_time()  # start-up (imports, connecting) not counted
        ready.put(ok)

    settings = ServerSettings(database_url=url, mqtt=MqttSection(**mqtt))
    stats = run_worker(settings, index, stop, on_committed=committed, on_ready=subscribed)
    results.put(
        {
            "latencies": latencies,
            "last_commit": last_commit[0],
            "cpu_s": time.process_time() - cpu_at_ready[0],
            **asdict(stats),
        }
    )


def run(
    gates: int,
    events: int,
    db_url: str | None = None,
    workers: int = 2,
    repeat_share: float = 0.01,
    progress: Callable[[str], None] = lambda _: None,
    notify: bool = False,
    rate: float | None = None,
    dispatchers: int = 1,
    students: int = STUDENTS,
) -> dict[str, Any]:
    """Run the benchmark on a fresh database (SQLite in a temporary directory, or a new
    database on the PostgreSQL server ``db_url`` names) and return the figures; with
    ``notify``, also parent notifications by Web Push (:mod:`benchmarks.notify`) sent by
    ``dispatchers`` dispatcher processes. ``rate`` paces the gates to that many events per
    second in all (a morning rush has a rate; the default, None, is as fast as they can).
    Events go to ``students`` students in turn: the first pass of each is an arrival, the
    second a departure."""
    with tempfile.TemporaryDirectory(prefix="cg-bench-ingest-") as tmp:
        url, cleanup = fresh_database(db_url, Path(tmp))
        try:
            return _run(
                Path(tmp),
                url,
                gates,
                events,
                workers,
                repeat_share,
                progress,
                NotifyProbe(url, dispatchers) if notify else None,
                rate,
                students,
            )
        finally:
            cleanup()


def fresh_database(db_url: str | None, tmp: Path) -> tuple[str, Callable[[], None]]:
    if db_url is None:
        return f"sqlite:///{tmp / 'campusgate.db'}", lambda: None
    parsed = database_url(db_url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            raise ValueError(f"{parsed.database} exists; the benchmark needs a fresh database")
        return db_url, lambda: None
    url = create_database(db_url, f"cg_bench_{secrets.token_hex(4)}")
    return url, lambda: drop_database(url)


def _run(
    tmp: Path,
    url: str,
    gates: int,
    events: int,
    workers: int,
    repeat_share: float,
    progress: Callable[[str], None],
    probe: NotifyProbe | None,
    rate: float | None,
    students: int,
) -> dict[str, Any]:
    engine = create_db_engine(url)
    upgrade(engine)
    seed(engine, gates, students)
    if probe is not None:
        probe.start(engine)
    broker = start_mosquitto(
        tmp / "mosquitto", [DeviceAccount(SITE, _gate(n)) for n in range(gates)]
    )
    context = multiprocessing.get_context("spawn")
    ready, results, stop = context.Queue(), context.Queue(), context.Event()
    mqtt = {
        "port": broker.port(tls=False),
        "password": SecretStr(broker.passwords[SERVER_USERNAME]),
        "client_id": "bench-ingest",
    }
    processes = [
        context.Process(target=_worker_main, args=(url, mqtt, i, ready, stop, results))
        for i in range(workers)
    ]
    try:
        for process in processes:
            process.start()
        if not all(ready.get(timeout=60) for _ in processes):
            raise RuntimeError("an ingest worker was not subscribed")
        pace = f" at {rate:g}/s" if rate else ""
        progress(f"{workers} ingest workers up; {gates} gates publishing {events} events{pace}")
        repeat_every = round(1 / repeat_share) if repeat_share > 0 else 0
        senders = [
            _Gate(broker, _gate(g), range(g, events, gates), repeat_every, students)
            for g in range(gates)
        ]
        _drive(senders, lambda: all(s.connected for s in senders), fill=False)
        started, broker_cpu = time.time(), _cpu_seconds(broker.process)
        gates_cpu = time.process_time()
        if rate:
            first = time.monotonic()
            for sender in senders:
                sender.due = lambda n: first + n / rate
        timeout = 120.0 + (events / rate if rate else 0.0)
        _drive(senders, lambda: all(s.done for s in senders), timeout)
        published, gates_cpu = time.time(), time.process_time() - gates_cpu
        sent = sum(s.sent for s in senders)
        stored = _drain(engine, sent, progress)
        notified = probe.finish(engine) if probe is not None else {}
        broker_cpu = _cpu_seconds(broker.process) - broker_cpu
        stop.set()
        reports = [results.get(timeout=60) for _ in processes]
    finally:
        stop.set()
        if probe is not None:
            probe.stop()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        broker.stop()
    figures = _figures(engine, url, gates, events, workers, sent, stored, senders, reports)
    figures |= notified
    figures["students"] = students
    figures["rate_requested"] = rate
    figures["publish_s"] = round(published - started, 3)
    figures["publish_rate"] = round(sent / max(published - started, 1e-9), 1)
    last_commit = max(r["last_commit"] for r in reports)
    figures["events_per_s"] = round(stored / max(last_commit - started, 1e-9), 1)
    # Where the machine's CPU went: per event, in microseconds.
    figures["cpu_us_per_event"] = {
        "gates": round(gates_cpu / max(sent, 1) * 1e6),
        "broker": round(broker_cpu / max(sent, 1) * 1e6),
        "ingest": round(sum(r["cpu_s"] for r in reports) / max(stored, 1) * 1e6),
    }
    engine.dispose()
    return figures


def _cpu_seconds(process: subprocess.Popen | None) -> float:
    """CPU time a child process used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (AttributeError, OSError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain(engine: Engine, sent: int, progress: Callable[[str], None]) -> int:
    """Wait until every acknowledged event is stored, or nothing moved for a while."""
    stored, moved_at = -1, time.monotonic()
    while time.monotonic() - moved_at < DRAIN_TIMEOUT_S:
        with Session(engine) as db:
            now_stored = db.exec(select(func.count()).select_from(RawEvent)).one()
        if now_stored != stored:
            stored, moved_at = now_stored, time.monotonic()
            progress(f"stored {stored}/{sent}")
        if stored >= sent:
            break
        time.sleep(0.2)
    return stored


def _figures(
    engine: Engine,
    url: str,
    gates: int,
    events: int,
    workers: int,
    sent: int,
    stored: int,
    senders: list[_Gate],
    reports: list[dict[str, Any]],
) -> dict[str, Any]:
    with Session(engine) as db:
        ids = db.exec(select(func.count(func.distinct(RawEvent.event_id)))).one()
        rows = db.exec(select(func.count()).select_from(Attendance)).one()
        students = db.exec(select(func.count(func.distinct(RawEvent.student_id)))).one()
        counted = db.exec(
            select(func.count()).select_from(RawEvent).where(col(RawEvent.outcome) == "counted")
        ).one()
    latencies = [x for r in reports for x in r["latencies"]]
    latency = percentiles_ms(latencies) if latencies else {"p50": None, "p95": None}
    return {
        "database": database_url(url).get_backend_name(),
        "gates": gates,
        "workers": workers,
        "events_requested": events,
        "events_sent": sent,
        "repeats_sent": sum(s.repeats for s in senders),
        "events_stored": stored,
        "events_counted": counted,
        "duplicates": sum(r["duplicates"] for r in reports),
        "rejected": sum(r["rejected"] for r in reports),
        "lost": sent - stored,
        "double_counted": (stored - ids) + max(0, rows - students),
        "attendance_rows": rows,
        "ingest_latency_ms_p50": latency["p50"],
        "ingest_latency_ms_p95": latency["p95"],
        "db_retries": sum(r["db_retries"] for r in reports),
    }
