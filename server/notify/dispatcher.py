"""The dispatcher: takes due outbox rows, sends them through the channels, records the outcome.

**Claiming.** A dispatcher takes due rows (``queued``/``held`` whose time has come, or ``sending``
rows whose lease ran out) in one short transaction that sets its lease (``claimed_by``,
``claimed_until``), the status ``sending`` and the attempt, and commits before any provider is
called. PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED LIMIT n`` and an ``UPDATE`` of those ids, so
concurrent dispatchers take disjoint rows without waiting for one another. SQLite: one
``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING id`` under ``BEGIN IMMEDIATE``, which holds
the database's single write lock, so two dispatchers can never take the same row either.

**Sending.** Channels block, so sends run on a thread pool with up to as many rows again queued
behind it; the loop tops the queue up in bulk as it runs low and records outcomes as soon as
they are back. ``accepted``: the provider's id is kept. ``temporary``: retried after an
exponential backoff with full jitter (never sooner than the provider's ``retry_after_s``),
``failed`` after ``max_attempts``. ``permanent``: ``failed``, and the guardian's next wanted
channel gets a row of its own (:func:`fall_back`). A push service's 404/410 deletes the
subscription.

**Crash safety.** A dispatcher killed after the provider accepted a message but before the outcome
was committed leaves the row ``sending`` under its lease. Once the lease has run out another
dispatcher sends it again *with the same idempotency key*: providers that deduplicate
(``Channel.deduplicates``: eSMS's RequestId, a generic gateway configured so) drop the repeat,
Web Push collapses it (``Topic`` and the notification ``tag``), e-mail repeats its
``Message-ID``. For the others (SpeedSMS, Apprise, a non-deduplicating gateway) delivery is
at-least-once: a crash repeats a message only if it falls between the provider's acceptance and
the commit of the outcome, which the loop writes in one short transaction as soon as the send
returns. (Rows are marked ``sending`` with their attempt when claimed, before any provider is
called; one killed before its send began merely waits for its lease.)

Every outcome is written only if the row is still this dispatcher's attempt (``claimed_by`` and
``attempts`` unchanged, checked under a row lock), so a dispatcher that lost its lease never
overwrites a newer attempt.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, and_, bindparam, or_, update
from sqlmodel import Session, col, select

from server.db import insert_or_ignore, session_scope
from server.models import Guardian, StudentGuardian, utc_now
from server.notify.channel import Channel, Delivery, Outcome, Outgoing
from server.notify.channel import PushSubscription as BrowserSubscription
from server.notify.channels import SchoolChannels, build_channels
from server.notify.digest import DIGEST_KIND, build_digests
from server.notify.models import (
    ALL_KINDS,
    DUE_STATUSES,
    Notification,
    NotificationPolicy,
    NotificationPreference,
    NotificationStatus,
    PushSubscription,
)
from server.notify.opt_out import OptOut, opt_out_url, opted_out, wanted_channels
from server.notify.outbox import key_for_channel
from server.notify.preferences import unwanted
from server.notify.push_subscriptions import forget
from server.notify.settings import NotifySection

log = logging.getLogger(__name__)

_TABLE = Notification.__table__  # type: ignore[attr-defined]
ERROR_PAUSE_S = 5.0
"""How long the loop waits after the database refused it, before trying again."""

_FALLBACK_COPIES = (
    "school_id",
    "student_id",
    "guardian_id",
    "kind",
    "locale",
    "day",
    "event_at",
    "gate",
    "subject",
    "text",
    "short_text",
    "fields",
    "attendance_id",
    "event_id",
)


class StopSignal(Protocol):
    """A threading or multiprocessing Event."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class ChannelBook:
    """Every school's channels: the shared ones, and those of schools that have their own."""

    def __init__(
        self,
        channels: Mapping[str, Channel],
        per_school: Mapping[int, Mapping[str, Channel]] | None = None,
    ) -> None:
        self._shared = channels
        self._per_school = per_school or {}

    @classmethod
    def from_settings(cls, settings: NotifySection) -> ChannelBook:
        def build(configs: Mapping[str, Any]) -> dict[str, Channel]:
            return build_channels(SchoolChannels(channels=dict(configs)))

        own = {school: build(configs) for school, configs in settings.school_channels.items()}
        return cls(build(settings.channels), own)

    def get(self, school_id: int, name: str) -> Channel | None:
        return self._per_school.get(school_id, self._shared).get(name)

    def close(self) -> None:
        for channels in (self._shared, *self._per_school.values()):
            for channel in channels.values():
                channel.close()


def retry_delay(
    attempt: int, settings: NotifySection, retry_after_s: float | None, rng: random.Random
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: "full jitter" (uniform between 0 and
    ``retry_base_s × 2^(attempt-1)``, capped at ``retry_max_s``) so that rows which failed
    together — a gateway that was down — do not come back together; never less than what the
    provider asked for."""
    ceiling = min(settings.retry_max_s, settings.retry_base_s * 2 ** max(attempt - 1, 0))
    return max(rng.uniform(0, ceiling), retry_after_s or 0.0)


@dataclass(frozen=True, slots=True)
class _Job:
    """One claimed row and everything needed to send it, read in the claiming transaction."""

    row: Notification
    channel: Channel | None
    outgoing: Outgoing
    devices: tuple[BrowserSubscription, ...]
    next_channels: tuple[str, ...]
    skip: str | None


@dataclass(frozen=True, slots=True)
class _Result:
    job: _Job
    delivery: Delivery | None
    """None: not sent, for the reason in ``job.skip``."""
    accepted_endpoints: tuple[str, ...] = ()
    gone_endpoints: tuple[str, ...] = ()


class Dispatcher:
    """One outbox worker; run as many as wanted, in threads or processes or on other hosts."""

    def __init__(
        self,
        engine: Engine,
        channels: ChannelBook,
        settings: NotifySection,
        *,
        name: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.channels = channels
        self.settings = settings
        self.name = name or f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
        self.clock = clock
        self._rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(settings.send_threads, thread_name_prefix="notify-send")
        self._unrecorded: list[_Result] = []

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for sends in flight and release the threads (the channels are the caller's)."""
        self._pool.shutdown(wait=True)

    # --- the loop -------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Take what is due (up to ``send_threads`` rows), send it, record the outcomes;
        returns how many rows were taken."""
        jobs = self._exchange(self.settings.send_threads)
        self._unrecorded += self._pool.map(self._deliver, jobs)
        self._exchange(0)
        return len(jobs)

    def run(self, stop: StopSignal) -> None:
        """Send until ``stop`` is set, with the digest job every ``digest_check_s``; then take
        nothing new, wait for the sends in flight and record them (a clean stop leaves no row
        leased)."""
        settings = self.settings
        threads = settings.send_threads
        in_flight: set[Future[_Result]] = set()
        next_digest = time.monotonic()
        oldest_unrecorded = 0.0
        log.info("notification dispatcher started", extra={"dispatcher": self.name})
        while not stop.is_set() or in_flight:
            now = time.monotonic()
            if not stop.is_set() and now >= next_digest:
                self._guarded(stop, build_digests, self.engine, self.clock())
                next_digest = time.monotonic() + settings.digest_check_s
            # Keep a second pool's worth queued behind the threads, topped up in bulk when it
            # runs low; outcomes are written with that claim, or once a pool's worth (or a
            # moment's) has gathered: few, larger transactions.
            wanted = (
                0 if stop.is_set() or len(in_flight) > threads else 2 * threads - len(in_flight)
            )
            overdue = self._unrecorded and (
                len(self._unrecorded) >= threads
                or now - oldest_unrecorded >= settings.poll_interval_s
                or not in_flight
            )
            if wanted or overdue:
                jobs = self._guarded(stop, self._exchange, wanted) or []
                in_flight.update(self._pool.submit(self._deliver, job) for job in jobs)
            if in_flight:
                done, in_flight = wait(
                    in_flight, timeout=settings.poll_interval_s, return_when=FIRST_COMPLETED
                )
                if done and not self._unrecorded:
                    oldest_unrecorded = time.monotonic()
                self._unrecorded += (future.result() for future in done)
            else:
                stop.wait(settings.poll_interval_s)
        if self._unrecorded:
            self._guarded(stop, self._exchange, 0)
        if self._unrecorded:
            # Their leases run out and another dispatcher sends them again (same keys).
            log.error(
                "notification outcomes not recorded at stop",
                extra={"dispatcher": self.name, "outcomes": len(self._unrecorded)},
            )
        log.info("notification dispatcher stopped", extra={"dispatcher": self.name})

    def _guarded(self, stop: StopSignal, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)``, or None after logging why it failed (the database away, say) and
        pausing, so a loop that cannot work does not spin."""
        try:
            return step(*args)
        except Exception:
            log.exception("notification dispatcher step failed", extra={"dispatcher": self.name})
            stop.wait(ERROR_PAUSE_S)
            return None

    def _exchange(self, wanted: int) -> list[_Job]:
        """Write the outcomes gathered so far and claim up to ``wanted`` due rows, in one
        transaction. On SQLite every writing transaction waits its turn for the database's one
        write lock, which ingest holds much of the time during a morning rush: a dispatcher
        that took it once to record and again to claim fell behind the arrivals. If the
        transaction fails, the outcomes stay gathered for the next try (the lease keeps other
        dispatchers off those rows meanwhile) and nothing is claimed."""
        now = self.clock()
        with session_scope(self.engine, write=True) as db:
            if self._unrecorded:
                self._write(db, self._unrecorded, now)
            jobs = self._claim(db, wanted, now) if wanted else []
        self._unrecorded.clear()
        return jobs

    # --- claiming -------------------------------------------------------------------------------

    def _claim(self, db: Session, limit: int, now: datetime) -> list[_Job]:
        table = _TABLE
        due = (
            select(table.c.id)
            .where(
                table.c.status.in_(DUE_STATUSES),
                table.c.next_attempt_at <= now,
                or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
            )
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        lease = {
            "claimed_by": self.name,
            "claimed_until": now + timedelta(seconds=self.settings.lease_s),
            "status": NotificationStatus.SENDING,
            "attempts": table.c.attempts + 1,
        }
        connection = db.connection()
        if connection.dialect.name == "postgresql":
            ids = list(connection.execute(due.with_for_update(skip_locked=True)).scalars())
            if ids:
                connection.execute(update(table).where(table.c.id.in_(ids)).values(**lease))
        else:
            claim = update(table).where(table.c.id.in_(due)).values(**lease)
            ids = list(connection.execute(claim.returning(table.c.id)).scalars())
        return self._jobs(db, ids) if ids else []

    def _jobs(self, db: Session, ids: list[int]) -> list[_Job]:
        found = db.exec(
            select(
                Notification,
                Guardian,
                StudentGuardian,
                NotificationPreference.apprise_target,
                NotificationPreference.kinds,
                NotificationPolicy.disabled_kinds,
            )
            .join(Guardian, col(Guardian.id) == Notification.guardian_id)
            .outerjoin(
                StudentGuardian,
                and_(
                    col(StudentGuardian.student_id) == Notification.student_id,
                    col(StudentGuardian.guardian_id) == Notification.guardian_id,
                ),
            )
            .outerjoin(
                NotificationPreference,
                col(NotificationPreference.guardian_id) == Notification.guardian_id,
            )
            .outerjoin(
                NotificationPolicy, col(NotificationPolicy.school_id) == Notification.school_id
            )
            .where(col(Notification.id).in_(ids))
            .order_by(col(Notification.id))
        ).all()
        guardian_ids = {guardian.id for _, guardian, *_ in found}
        opted = opted_out(db, guardian_ids)
        devices = self._devices(db, guardian_ids)
        jobs = []
        for row, guardian, link, apprise_target, kinds, disabled in found:
            channel = self.channels.get(row.school_id, row.channel)
            mine = opted.get(guardian.id, frozenset())
            wanted = wanted_channels(link.channel_preferences or {}, mine, row.kind) if link else []
            skip = None
            if link is None:
                skip = "the guardian is no longer linked to the student"
            elif row.kind != DIGEST_KIND:  # a digest's news was checked when it was folded
                skip = unwanted(row.kind, disabled or (), kinds)
            if skip is None and row.channel not in wanted:
                skip = f"the guardian no longer wants these messages on {row.channel!r}"
            outgoing = Outgoing(
                idempotency_key=row.idempotency_key,
                kind=row.kind,
                subject=row.subject,
                text=row.text,
                short_text=row.short_text,
                locale="en" if row.locale == "en" else "vi",
                fields=dict(row.fields),
                phone=guardian.phone,
                email=guardian.email,
                apprise_target=apprise_target,
                url=self.settings.public_url,
                opt_out_url=self._opt_out_url(row),
            )
            after = wanted[wanted.index(row.channel) + 1 :] if row.channel in wanted else []
            jobs.append(
                _Job(row, channel, outgoing, devices.get(guardian.id, ()), tuple(after), skip)
            )
        return jobs

    def _devices(
        self, db: Session, guardian_ids: set[int]
    ) -> dict[int, tuple[BrowserSubscription, ...]]:
        """Each guardian's newest push subscriptions, at most ``push_devices_max``."""
        devices: dict[int, list[BrowserSubscription]] = {}
        query = (
            select(PushSubscription)
            .where(col(PushSubscription.guardian_id).in_(guardian_ids))
            .order_by(col(PushSubscription.created_at).desc(), col(PushSubscription.id).desc())
        )
        for found in db.exec(query):
            mine = devices.setdefault(found.guardian_id, [])
            if len(mine) < self.settings.push_devices_max:
                mine.append(BrowserSubscription(found.endpoint, found.p256dh, found.auth))
        return {guardian: tuple(found) for guardian, found in devices.items()}

    def _opt_out_url(self, row: Notification) -> str | None:
        settings = self.settings
        if settings.public_url is None or settings.opt_out_secret is None:
            return None
        kind = ALL_KINDS if row.kind == DIGEST_KIND else row.kind
        opt_out = OptOut(row.guardian_id, kind, row.channel)
        return opt_out_url(settings.public_url, settings.opt_out_secret, opt_out)

    # --- sending (pool threads: no database here) --------------------------------------------

    def _deliver(self, job: _Job) -> _Result:
        if job.skip is not None:
            return _Result(job, None)
        if job.channel is None:
            detail = f"channel {job.row.channel!r} is not configured for this school"
            return _Result(job, Delivery.permanent(detail))
        if job.channel.address != "push":
            return _Result(job, _send(job.channel, job.outgoing))
        if not job.devices:
            return _Result(job, Delivery.permanent("the guardian has no push subscription"))
        sent = [
            (device.endpoint, _send(job.channel, replace(job.outgoing, push=device)))
            for device in job.devices
        ]
        gone = tuple(endpoint for endpoint, delivery in sent if delivery.subscription_gone)
        accepted = [(e, d) for e, d in sent if d.outcome is Outcome.ACCEPTED]
        if accepted:
            ids = " ".join(d.provider_id for _, d in accepted if d.provider_id)
            detail = f"{len(accepted)} of {len(sent)} devices"
            delivery = Delivery.accepted(ids[:200] or None, detail)
        else:
            temporary = [d for _, d in sent if d.outcome is Outcome.TEMPORARY]
            delivery = (
                max(temporary, key=lambda d: d.retry_after_s or 0.0) if temporary else sent[0][1]
            )
        return _Result(job, delivery, tuple(e for e, _ in accepted), gone)

    # --- recording ------------------------------------------------------------------------------

    def _write(self, db: Session, results: list[_Result], now: datetime) -> None:
        """Write the outcomes of the rows that are still this dispatcher's attempt (locked
        first, so no other dispatcher can take one in between), in one statement."""
        table = _TABLE
        ids = [result.job.row.id for result in results]
        locked = db.execute(
            select(table.c.id, table.c.claimed_by, table.c.attempts)
            .where(table.c.id.in_(ids))
            .with_for_update()
        )
        holders = {row.id: (row.claimed_by, row.attempts) for row in locked}
        ours = []
        for result in results:
            row = result.job.row
            if holders.get(row.id) == (self.name, row.attempts):
                ours.append(result)
            else:
                log.warning(
                    "notification outcome not recorded: another dispatcher has the row now",
                    extra={"dispatcher": self.name, "notification": row.id},
                )
        outcomes = [self._outcome(result, now) for result in ours]
        if outcomes:
            db.execute(update(table).where(table.c.id == bindparam("row_id")), outcomes)
        for result, outcome in zip(ours, outcomes, strict=True):
            row = result.job.row
            if outcome["status"] is NotificationStatus.FAILED:
                fall_back(db, row, result.job.next_channels, now)
            log.info(
                "notification %s",
                outcome["status"],
                extra={
                    "dispatcher": self.name,
                    "notification": row.id,
                    "channel": row.channel,
                    "kind": row.kind,
                    "attempt": row.attempts,
                    "detail": outcome["last_error"] or outcome["reason"],
                },
            )
        forget(db, {endpoint for result in results for endpoint in result.gone_endpoints})
        delivered = {endpoint for result in ours for endpoint in result.accepted_endpoints}
        if delivered:
            db.execute(
                update(PushSubscription)
                .where(col(PushSubscription.endpoint).in_(delivered))
                .values(last_success_at=now)
            )

    def _outcome(self, result: _Result, now: datetime) -> dict[str, Any]:
        """The row's new values after ``result``, lease released (every key, every time, so
        all outcomes go in one executemany)."""
        row, delivery = result.job.row, result.delivery
        values: dict[str, Any] = {
            "row_id": row.id,
            "status": NotificationStatus.FAILED,
            "reason": row.reason,
            "provider_id": row.provider_id,
            "sent_at": row.sent_at,
            "last_error": None,
            "next_attempt_at": row.next_attempt_at,
            "claimed_by": None,
            "claimed_until": None,
        }
        if delivery is None:
            values |= {"status": NotificationStatus.SKIPPED, "reason": result.job.skip}
        elif delivery.outcome is Outcome.ACCEPTED:
            provider_id = (delivery.provider_id or "")[:200] or None
            values |= {"status": NotificationStatus.ACCEPTED, "provider_id": provider_id}
            values["sent_at"] = now
        elif delivery.outcome is Outcome.TEMPORARY and row.attempts < self.settings.max_attempts:
            delay = retry_delay(row.attempts, self.settings, delivery.retry_after_s, self._rng)
            values |= {
                "status": NotificationStatus.QUEUED,
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_error": delivery.detail[:500],
            }
        elif delivery.outcome is Outcome.TEMPORARY:
            values["last_error"] = f"gave up after {row.attempts} attempts: {delivery.detail}"
        else:
            values["last_error"] = delivery.detail
        values["last_error"] = values["last_error"] and values["last_error"][:500]
        return values


def _send(channel: Channel, message: Outgoing) -> Delivery:
    """``channel.send``; a channel that raises (a bug, never a provider's failure) counts as a
    temporary failure, so one bad adapter cannot stop the loop and its rows end ``failed``."""
    try:
        return channel.send(message)
    except Exception as exc:
        log.exception("channel raised", extra={"channel": channel.name})
        return Delivery.temporary(f"internal error: {type(exc).__name__}: {exc}")


def fall_back(
    db: Session, row: Notification, next_channels: tuple[str, ...], now: datetime
) -> bool:
    """Queue ``row``'s message on the first of ``next_channels`` (the guardian's wanted channels
    after the failed one), with that channel's own idempotency key; False when there is none or
    it exists already."""
    if not next_channels:
        return False
    channel = next_channels[0]
    fallback = {name: getattr(row, name) for name in _FALLBACK_COPIES} | {
        "idempotency_key": key_for_channel(row.idempotency_key, channel),
        "channel": channel,
        "reason": f"{row.channel!r} failed; next channel",
        "status": NotificationStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "fallback_of": row.id,
    }
    return bool(insert_or_ignore(db, Notification, [fallback], ["idempotency_key"], ["id"]))


def dispatch_loop(engine: Engine, settings: NotifySection, stop: StopSignal) -> None:
    """Run a dispatcher over the channels in ``settings`` until ``stop`` is set, then finish
    the sends in flight and close the channels (what ``campusgate server run`` starts)."""
    channels = ChannelBook.from_settings(settings)
    try:
        with Dispatcher(engine, channels, settings) as dispatcher:
            dispatcher.run(stop)
    finally:
        channels.close()
