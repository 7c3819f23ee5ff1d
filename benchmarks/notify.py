"""Notification latency for ``campusgate bench ingest --notify``: a gate's publish → the parent's
push service accepting the message.

Every student of the benchmark school gets a guardian who wants Web Push, subscribed at a local
push service on 127.0.0.1 (it answers ``201 Created`` as a real one does; it does not decrypt,
the browser's work is not the server's). A dispatcher runs in a process of its own beside the
ingest workers, as ``campusgate server run`` runs it, with the push service in the same process.
Each accepted message's latency is its ``sent_at`` (committed right after the push service's 201)
minus the gate event's ``ts`` (stamped by the gate just before publishing), so the figure holds
ingest, the outbox, the dispatcher's polling, encryption and VAPID signing, and the HTTP request.

Use: :meth:`NotifyProbe.start` after seeding the school and before the gates publish,
:meth:`NotifyProbe.finish` once ingest has stored everything.
"""

from __future__ import annotations

import base64
import multiprocessing
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from benchmarks.stats import percentiles_ms
from server.db import create_db_engine
from server.models import Guardian, GuardianRelationship, Student, StudentGuardian
from server.notify.channels.webpush import WebPushChannel, WebPushConfig
from server.notify.dispatcher import ChannelBook, Dispatcher
from server.notify.models import Notification, NotificationStatus, PushSubscription
from server.notify.settings import NotifySection

SETTLE_TIMEOUT_S = 120.0
"""Give up waiting for the outbox to empty when nothing moved for this long."""

_OPEN = (NotificationStatus.QUEUED, NotificationStatus.HELD, NotificationStatus.SENDING)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class _PushService(ThreadingHTTPServer):
    """Takes every push message with 201 and counts them."""

    daemon_threads = True

    def __init__(self) -> None:
        self.received = 0
        self._lock = threading.Lock()
        service = self

        class _Handler(BaseHTTPRequestHandler):
            # Keep-alive, as real push services offer: a connection per message would time
            # TCP set-up rather than the dispatcher.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with service._lock:
                    service.received += 1
                    number = service.received
                self.send_response(201)
                self.send_header("Location", f"/m/{number}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), _Handler)


def _push_service_main(ready: Any, stop: Any, results: Any) -> None:
    """The push service's process: serve until ``stop``, then report how many messages came."""
    service = _PushService()
    threading.Thread(target=service.serve_forever, daemon=True).start()
    ready.put(service.server_address[1])
    stop.wait()
    service.shutdown()
    results.put({"push_requests": service.received, "cpu_s": time.process_time()})


def _dispatcher_main(url: str, stop: Any, results: Any) -> None:
    """The dispatcher's process, with a school VAPID key of its own, until ``stop``; then it
    reports the CPU it used."""
    vapid = Vapid()
    vapid.generate_keys()
    raw = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    config = WebPushConfig(vapid_private_key=_b64url(raw), vapid_subject="mailto:bench@example.vn")
    channels = ChannelBook({"push": WebPushChannel("push", config)})
    with Dispatcher(create_db_engine(url), channels, NotifySection()) as dispatcher:
        dispatcher.run(stop)
    channels.close()
    results.put({"dispatcher_cpu_s": time.process_time()})


def subscribe_every_student(engine: Engine, push_port: int) -> int:
    """A guardian wanting Web Push for each student, subscribed at the local push service;
    returns how many."""
    browser = ec.generate_private_key(ec.SECP256R1())
    p256dh, auth = _b64url(_point(browser)), _b64url(os.urandom(16))
    with Session(engine) as db:
        students = list(db.exec(select(Student.id, Student.full_name)))
        guardians = [Guardian(full_name=f"Phụ huynh {name}") for _, name in students]
        db.add_all(guardians)
        db.flush()
        for (student_id, _), guardian in zip(students, guardians, strict=True):
            db.add(
                StudentGuardian(
                    student_id=student_id,
                    guardian_id=guardian.id,
                    relationship=GuardianRelationship.MOTHER,
                    channel_preferences={"push": True},
                )
            )
            db.add(
                PushSubscription(
                    guardian_id=guardian.id,
                    endpoint=f"http://127.0.0.1:{push_port}/push/{guardian.id}",
                    p256dh=p256dh,
                    auth=auth,
                )
            )
        db.commit()
    return len(students)


class NotifyProbe:
    """The notification side of an ingest benchmark run on the database at ``url``: a local
    push service and a dispatcher, each in a process of its own (a real push service is
    elsewhere, and must not compete with the dispatcher for its interpreter)."""

    def __init__(self, url: str, dispatchers: int = 1) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready, self._results, self._stop = context.Queue(), context.Queue(), context.Event()
        self._processes = [
            context.Process(
                target=_push_service_main,
                args=(self._ready, self._stop, self._results),
                name="push-service",
            ),
            *(
                context.Process(
                    target=_dispatcher_main,
                    args=(url, self._stop, self._results),
                    name=f"dispatcher-{n}",
                )
                for n in range(dispatchers)
            ),
        ]
        self.dispatchers = dispatchers

    def start(self, engine: Engine) -> None:
        """Start the push service, subscribe a guardian of every student, start the
        dispatchers."""
        service, *dispatchers = self._processes
        service.start()
        subscribe_every_student(engine, self._ready.get(timeout=60))
        for dispatcher in dispatchers:
            dispatcher.start()

    def finish(self, engine: Engine) -> dict[str, Any]:
        """Wait until the outbox has nothing left to send (or stalls), stop, and return the
        figures."""
        try:
            _settle(engine)
        finally:
            self.stop()
        reports = []
        for _ in self._processes:
            try:
                reports.append(self._results.get(timeout=10))
            except queue.Empty:  # one was killed: no figures of its own
                break
        figures = _figures(engine) | {"dispatchers": self.dispatchers}
        sent = max(figures["notifications_accepted"], 1)
        # Where the CPU went, per message accepted (start-up included: a few hundred ms).
        dispatchers = sum(r.get("dispatcher_cpu_s", 0.0) for r in reports)
        service = sum(r.get("cpu_s", 0.0) for r in reports)
        figures["push_requests"] = sum(r.get("push_requests", 0) for r in reports)
        figures["cpu_us_per_notification"] = {
            "dispatchers": round(dispatchers / sent * 1e6),
            "push_service": round(service / sent * 1e6),
        }
        return figures

    def stop(self) -> None:
        """Stop both processes (killing one that does not stop within a minute)."""
        self._stop.set()
        for process in self._processes:
            if process.pid is not None:
                process.join(60)
                if process.is_alive():
                    process.kill()


def _open_rows(engine: Engine) -> int:
    with Session(engine) as db:
        return db.exec(
            select(func.count())
            .select_from(Notification)
            .where(col(Notification.status).in_(_OPEN))
        ).one()


def _settle(engine: Engine) -> None:
    left, moved_at = _open_rows(engine), time.monotonic()
    while left and time.monotonic() - moved_at < SETTLE_TIMEOUT_S:
        time.sleep(0.2)
        now_left = _open_rows(engine)
        if now_left != left:
            left, moved_at = now_left, time.monotonic()


def _percentiles(seconds: list[float]) -> dict[str, float | None]:
    return percentiles_ms(seconds) if seconds else {"p50": None, "p95": None}


def _figures(engine: Engine) -> dict[str, Any]:
    with Session(engine) as db:
        accepted = db.exec(
            select(Notification.event_at, Notification.sent_at, Notification.created_at).where(
                Notification.status == NotificationStatus.ACCEPTED
            )
        ).all()
        by_status = dict(
            db.exec(
                select(Notification.status, func.count()).group_by(col(Notification.status))
            ).all()
        )
    sent = [row for row in accepted if row[1] is not None]
    latency = _percentiles([(at - event).total_seconds() for event, at, _ in sent])
    # Where the time went: the gate → the outbox row (ingest), and the row → the push service
    # (the dispatcher's queue and the send).
    to_outbox = _percentiles([(made - event).total_seconds() for event, _, made in sent])
    in_outbox = _percentiles([(at - made).total_seconds() for _, at, made in sent])
    sent_at = [at for _, at, _ in sent]
    # The dispatchers' pace while they had work: from the first acceptance to the last.
    span = (max(sent_at) - min(sent_at)).total_seconds() if len(sent_at) > 1 else 0.0
    return {
        "notifications": sum(by_status.values()),
        "notifications_accepted": len(accepted),
        "notifications_not_accepted": sum(by_status.values()) - len(accepted),
        "notify_latency_ms_p50": latency["p50"],
        "notify_latency_ms_p95": latency["p95"],
        "notify_to_outbox_ms_p50": to_outbox["p50"],
        "notify_to_outbox_ms_p95": to_outbox["p95"],
        "notify_in_outbox_ms_p50": in_outbox["p50"],
        "notify_in_outbox_ms_p95": in_outbox["p95"],
        "notifications_per_s": round(len(sent_at) / span, 1) if span else None,
    }
