"""``campusgate bench roll``: the class-roll endpoint under many teachers at once.

A fresh database (SQLite in a temporary directory, or a new database on a PostgreSQL server) is
migrated and seeded with one school of ``classes`` classes of ``per_class`` students, a homeroom
teacher each, and a school day of gate events stored the way ingest stores them (an ``in`` each
morning, some late, a few students never seen, an ``out`` at noon). The server's own app runs
under uvicorn (``web_workers`` processes on one port) on a free loopback port, as ``campusgate
server run`` runs it.

Then three runs, each of ``seconds`` after a warm-up that is not counted, with httpx clients each
signed in as one class's teacher (bearer token) asking for their class's roll of that day:

- ``concurrent``: ``clients`` clients, each on a schedule of one request every ``interval``
  seconds (a teacher's page refreshing; clients start spread over the first interval). A request
  sent late because the previous answer was slow is timed from when it was due, so queueing shows
  in the latency instead of hiding in fewer requests.
- ``saturation``: the same clients in a closed loop (the next request as soon as the answer is
  read): the most the server does, and the latency when it is that busy.
- ``baseline_1_client``: one client, closed loop.
- ``idle_streams`` (only with ``streams``): no requests at all, only the open live-roll pages: what
  keeping them open costs the server when nothing happens.

With ``streams``, that many live-roll pages (Server-Sent Events, each signed in with a web session
as one class's teacher) stay open through every run, as teachers keep the roll open on a screen.
Each run also reports the CPU seconds the server's processes used during its measured seconds
(``server_cpu_s``) and, on PostgreSQL, those of the database server's processes
(``postgres_cpu_s``, every postgres process on the machine: run it on a quiet one).

Latency is client-side wall time from sending the GET to having read the whole body, over
loopback. Every request is a real one: authenticated, authorised, the roll built from the
database, and one audit row per student committed before the answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psutil
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from benchmarks.ingest import fresh_database
from benchmarks.stats import percentiles_ms
from broker.codec import decode, encode
from broker.managed import free_port
from broker.payloads import Event
from broker.topics import Channel, device_topic
from server.api.deps import SESSION_COOKIE
from server.api.security import new_api_token, new_token, token_hash
from server.auth_models import ApiToken, WebSession
from server.db import create_db_engine, session_scope
from server.ingest import store_batch
from server.migrations import upgrade
from server.models import (
    AuditLog,
    Device,
    Role,
    School,
    SchoolClass,
    SchoolSession,
    SchoolYear,
    Site,
    Student,
    Term,
    User,
    utc_now,
)

SITE = "bench-roll"
GATES = ("gate-1", "gate-2")
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
ABSENT_SHARE = 0.05
LATE_SHARE = 0.10
EVENTS_PER_BATCH = 200
SERVER_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Seeded:
    """What the clients need: per class, its id and its teacher's token, and the teacher's web
    session cookie (for the live roll, which only pages open); and the date."""

    day: date
    classes: list[tuple[int, str]]
    cookies: list[str]
    events: int


def _local(day: date, at: day_time) -> datetime:
    return datetime.combine(day, at, ZONE).astimezone(UTC)


def seed(engine: Engine, classes: int, per_class: int, rng: random.Random) -> Seeded:
    """The school, its classes and teachers (with API tokens) and today's gate events."""
    day = datetime.now(ZONE).date()
    with session_scope(engine, write=True) as db:
        school = School(name="Trường THPT Benchmark", school_weekdays="1234567")
        db.add(school)
        db.flush()
        site = Site(code=SITE, name="Cổng chính", school_id=school.id)
        year = SchoolYear(
            school_id=school.id,
            name="bench",
            starts_on=day - timedelta(days=30),
            ends_on=day + timedelta(days=30),
        )
        db.add_all([site, year])
        db.flush()
        db.add(
            Term(
                school_year_id=year.id, name="HK I", starts_on=year.starts_on, ends_on=year.ends_on
            )
        )
        for code, name, times in (
            ("morning", "Buổi sáng", (7, 0, 7, 15, 7, 30, 11, 30)),
            ("afternoon", "Buổi chiều", (13, 30, 13, 45, 14, 0, 17, 0)),
        ):
            start, late, absent, end = (day_time(*times[i : i + 2]) for i in range(0, 8, 2))
            db.add(
                SchoolSession(
                    school_id=school.id,
                    code=code,
                    name=name,
                    start=start,
                    late_after=late,
                    absent_after=absent,
                    end=end,
                )
            )
        db.add_all(
            Device(site_id=site.id, device_id=gate, credential_id=f"{SITE}.{gate}")
            for gate in GATES
        )
        tokens: list[tuple[int, str]] = []
        cookies: list[str] = []
        codes: list[str] = []
        for n in range(classes):
            teacher = User(username=f"gv{n:03d}", full_name=f"Giáo viên {n}", role=Role.TEACHER)
            db.add(teacher)
            db.flush()
            school_class = SchoolClass(
                school_id=school.id,
                school_year_id=year.id,
                name=f"{10 + n % 3}A{n}",
                grade=10 + n % 3,
                homeroom_teacher_id=teacher.id,
            )
            db.add(school_class)
            db.flush()
            token = new_api_token()
            db.add(
                ApiToken(
                    token_hash=token_hash(token), prefix=token[:8], name="bench", user_id=teacher.id
                )
            )
            tokens.append((school_class.id, token))
            cookie = new_token()
            db.add(
                WebSession(
                    token_hash=token_hash(cookie),
                    user_id=teacher.id,
                    expires_at=utc_now() + timedelta(days=1),
                )
            )
            cookies.append(cookie)
            for k in range(per_class):
                code = f"B{n:03d}{k:03d}"
                db.add(
                    Student(
                        code=code,
                        full_name=f"Học sinh {n}-{k}",
                        school_id=school.id,
                        class_id=school_class.id,
                    )
                )
                codes.append(code)
    events = [
        event for code in codes if rng.random() >= ABSENT_SHARE for event in _day_of(code, day, rng)
    ]
    for start in range(0, len(events), EVENTS_PER_BATCH):
        with session_scope(engine, write=True) as db:
            store_batch(db, [(e, e.message.ts) for e in events[start : start + EVENTS_PER_BATCH]])
    return Seeded(day, tokens, cookies, len(events))


def _day_of(code: str, day: date, rng: random.Random) -> list[Any]:
    """A student's ``in`` (on time, or late) and ``out`` at noon, as decoded MQTT messages."""
    late = rng.random() < LATE_SHARE
    arrival = (7, rng.randrange(16, 29)) if late else (6, rng.randrange(30, 60))
    moments = [
        ("in", _local(day, day_time(*arrival, rng.randrange(60)))),
        ("out", _local(day, day_time(11, rng.randrange(30, 45), rng.randrange(60)))),
    ]
    decoded = []
    for direction, ts in moments:
        gate = rng.choice(GATES)
        event = Event(
            event_id=uuid.uuid4(),
            kind="face",
            ts=ts,
            site=SITE,
            device=gate,
            direction=direction,
            student_id=code,
            score=0.9,
            track_id=1,
            model_pack="dlib-r29-mtcnn",
            latency_ms=80.0,
        )
        decoded.append(decode(device_topic(Channel.EVENTS, SITE, gate), encode(event)))
    return decoded


def _start_server(url: str, data_dir: Path, port: int, workers: int) -> subprocess.Popen:
    """The server's web part as ``campusgate server run`` runs it (:func:`server.web_server.
    serve`): ``workers`` processes on one port."""
    env = os.environ | {
        "CAMPUSGATE_SERVER__DATABASE_URL": url,
        "CAMPUSGATE_SERVER__DATA_DIR": str(data_dir),
        "CAMPUSGATE_SERVER__HTTP__HOST": "127.0.0.1",
        "CAMPUSGATE_SERVER__HTTP__PORT": str(port),
        "CAMPUSGATE_SERVER__HTTP__WORKERS": str(workers),
    }
    server = subprocess.Popen([sys.executable, "-m", "server.web_server"], env=env)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the server did not answer /healthz in time")


def _cpu_s(processes: list[psutil.Process]) -> float:
    """CPU seconds (user + system) ``processes`` and the children they reaped have used so far;
    one that has ended counts 0."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _cpu_now(server_pid: int, postgres: bool) -> dict[str, float]:
    """CPU seconds so far of the web server's processes and, with ``postgres``, of every
    postgres process: backends come and go with the pool's overflow, and the postmaster's
    reaped-children times keep those that ended."""
    server = psutil.Process(server_pid)
    used = {"server_cpu_s": _cpu_s([server, *server.children(recursive=True)])}
    if postgres:
        backends = [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]
        used["postgres_cpu_s"] = _cpu_s(backends)
    return used


async def _live_roll(http: httpx.AsyncClient, url: str, opened: asyncio.Event) -> None:
    """One open live-roll page: read its events until cancelled; ``opened`` once the first
    snapshot arrived."""
    async with http.stream("GET", url, timeout=None) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event: snapshot"):
                opened.set()


async def _load(
    base: str,
    seeded: Seeded,
    clients: int,
    seconds: float,
    warmup: float,
    interval: float,
    streams: int,
    server: tuple[int, bool],
) -> dict[str, Any]:
    """``clients`` clients for ``warmup + seconds`` beside ``streams`` open live-roll pages;
    the figures of the last ``seconds``. ``server``: the web server's process id, and whether
    its database is PostgreSQL.

    With ``interval`` 0 each client sends its next request as soon as it has read the answer
    (a closed loop: the server's saturation). Otherwise each client keeps a schedule of one
    request every ``interval`` seconds (clients start spread over the first interval), and a
    request sent late because the previous answer was slow is timed from when it was due, so
    queueing counts in the latency instead of hiding in fewer requests.
    """
    latencies: list[float] = []
    errors = 0
    cpu: dict[str, float] = {}

    async def client(n: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        class_id, _ = seeded.classes[n % len(seeded.classes)]
        url = f"{base}/api/v1/classes/{class_id}/roll"
        params = {"date": seeded.day.isoformat()}
        due = started + interval * n / clients
        while due < stop_at:
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            sent = time.perf_counter()
            response = await http.get(url, params=params, timeout=30.0)
            done = time.perf_counter()
            timed_from = min(due, sent) if interval else sent
            if timed_from >= counted_from:
                latencies.append(done - timed_from)
                errors += response.status_code != 200
            due = due + interval if interval else done

    async def cpu_meter() -> None:
        await asyncio.sleep(counted_from - time.perf_counter())
        at_start = _cpu_now(*server)
        await asyncio.sleep(stop_at - time.perf_counter())
        cpu.update({name: round(s - at_start[name], 2) for name, s in _cpu_now(*server).items()})

    async with AsyncExitStack() as stack:
        # Made before the clock starts: an httpx client loads the CA bundle when it is made,
        # which costs tens of milliseconds of the load generator's CPU each.
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            )
            for _, token in (seeded.classes[n % len(seeded.classes)] for n in range(clients))
        ]
        readers: list[asyncio.Task] = []
        opened: list[asyncio.Event] = []
        for n in range(streams):
            class_id, _ = seeded.classes[n % len(seeded.classes)]
            cookies = {SESSION_COOKIE: seeded.cookies[n % len(seeded.cookies)]}
            page = await stack.enter_async_context(httpx.AsyncClient(cookies=cookies))
            opened.append(asyncio.Event())
            url = f"{base}/web/api/classes/{class_id}/roll/stream"
            readers.append(asyncio.create_task(_live_roll(page, url, opened[-1])))
        try:
            async with asyncio.timeout(SERVER_START_TIMEOUT_S):
                await asyncio.gather(*(event.wait() for event in opened))
            started = time.perf_counter()
            counted_from, stop_at = started + warmup, started + warmup + seconds
            await asyncio.gather(cpu_meter(), *(client(n, http) for n, http in enumerate(https)))
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    return {
        "clients": clients,
        "interval_s": interval,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / seconds, 1),
        "latency_ms": percentiles_ms(latencies) if latencies else None,
        **cpu,
    }


def run(
    classes: int = 40,
    per_class: int = 40,
    clients: int = 50,
    interval: float = 2.0,
    seconds: float = 10.0,
    warmup: float = 2.0,
    db_url: str | None = None,
    workers: int = 1,
    streams: int = 0,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Run the benchmark on a fresh database and return the figures (see the module's text)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a log line per request
    # The seeded day's arrivals are hours old when the benchmark runs in the afternoon, and the
    # outbox logs each one it declines to announce; that is right for a school, noise here.
    logging.getLogger("server.notify.outbox").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cg-bench-roll-") as tmp:
        url, cleanup = fresh_database(db_url, Path(tmp))
        try:
            engine = create_db_engine(url)
            upgrade(engine)
            progress(f"seeding {classes} classes × {per_class} students and a day of events")
            seeded = seed(engine, classes, per_class, random.Random(6))
            port = free_port()
            server = _start_server(url, Path(tmp), port, workers)
            base = f"http://127.0.0.1:{port}"
            try:
                runs = {
                    "concurrent": (clients, interval),
                    "saturation": (clients, 0.0),
                    "baseline_1_client": (1, 0.0),
                }
                if streams:
                    runs["idle_streams"] = (0, 0.0)
                measured = (server.pid, url.startswith("postgresql"))
                figures = {}
                for name, (count, every) in runs.items():
                    progress(
                        f"{name}: {count} client(s), interval {every:g} s, {streams} open live "
                        f"roll(s), {seconds:g} s"
                    )
                    figures[name] = asyncio.run(
                        _load(base, seeded, count, seconds, warmup, every, streams, measured)
                    )
            finally:
                server.terminate()
                server.wait(timeout=30)
            with Session(engine) as db:
                audit_rows = db.exec(select(func.count()).select_from(AuditLog)).one()
            engine.dispose()
        finally:
            cleanup()
    return {
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "classes": classes,
        "students": classes * per_class,
        "web_workers": workers,
        "live_rolls_open": streams,
        "gate_events": seeded.events,
        "seconds": seconds,
        "warmup_s": warmup,
        **figures,
        "audit_rows_written": audit_rows,
        "method": (
            "web_workers uvicorn processes on one port (as campusgate server run with "
            "http.workers) on loopback; each client is an httpx "
            "client signed in as one class's teacher asking for that class's roll of the seeded "
            "day. concurrent: each client on a schedule of one request every interval_s, timed "
            "from when it was due; saturation: closed loop, the next request as soon as the "
            "answer is read; baseline_1_client: one client, closed loop; idle_streams: no "
            "requests. live_rolls_open live-roll pages (SSE, web session cookies) stay open "
            "through every run. Latency is client-side wall time; the warm-up is not counted. "
            "server_cpu_s / postgres_cpu_s: CPU seconds of the web server's / every postgres "
            "process during the measured seconds."
        ),
    }
