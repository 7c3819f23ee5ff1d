"""Ingest: gate messages from the broker into the database, each event stored exactly once.

Delivery guarantee (paho-mqtt 2.x, ``manual_ack=True``, QoS 1, persistent session):

* The broker keeps sending a message until this worker acknowledges it, across reconnects and
  restarts of the worker (a persistent session: ``clean_session`` off and a stable client id
  per worker).
* A worker acknowledges a message only after the transaction that stored it has committed. It
  commits a batch (whatever arrived while the previous batch was being written, at most
  ``ingest.batch_max``) and then acknowledges all of it, so a crash before the commit leaves the
  whole batch unacknowledged and the broker delivers it again.
* A repeat (same ``event_id``) stores nothing and is acknowledged; so at-least-once delivery from
  the gates and from the broker never double-counts.
* After the commit (never before), the worker publishes to each gate a receipt
  (``cg/v1/{site}/{device}/stored``, QoS 1) naming that gate's events of the batch that are now in
  the database, stored or found stored before: the gate forgets an event only on its receipt,
  since the broker's PUBACK does not mean the event reached a worker (Mosquitto drops events that
  match no subscription, as after a restart that forgot the shared subscription). A rejected
  message gets no receipt. Receipts are fire and forget: a lost one costs the gate a repeat.
* A message that cannot be right (bad topic, payload against the contract, unknown or disabled
  device, a device claiming another site) is logged with the reason, counted and acknowledged, so
  it is not delivered forever; it never stops the worker.
* A zero-length status or telemetry message is no message from a gate but the deletion of a
  retained one (``gatectl`` deletes the status of a gate the broker cut off): it is acknowledged
  and counted as such, quietly.
* A database error is not the message's fault: nothing is acknowledged, the transaction is
  retried with backoff until it commits (or the worker stops, leaving the messages with the
  broker). Only a single message the database refuses outright (a constraint or data error) is
  logged in full as unstorable and acknowledged.
* An acknowledgement is sent only on the connection the message arrived on: after a reconnect
  the broker redelivers it anyway (and its packet id may then name another message).

Several workers split the messages through a shared subscription (``$share/{group}/…``); the
unique ``event_id`` and row locks keep concurrent workers from double-counting.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

import paho.mqtt.client as mqtt
from sqlalchemy import Engine, tuple_
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from broker.codec import Decoded, PayloadError, decode, encode
from broker.payloads import MAX_RECEIPT_IDS, Event, Message, Receipt, Status, Telemetry
from broker.topics import Channel, TopicError, device_topic, parse_topic, subscription
from server.attendance import Calendar, Directory, apply_gate_events, place_gate_event
from server.core.config import ServerSettings
from server.db import create_db_engine, in_chunks, insert_or_ignore, session_scope
from server.models import Device, EventOutcome, RawEvent, School, Site, utc_now
from server.notify import outbox

log = logging.getLogger(__name__)

CHANNELS = (Channel.EVENTS, Channel.STATUS, Channel.TELEMETRY)
_RETAINABLE = (Channel.STATUS, Channel.TELEMETRY)
_POISON = (IntegrityError, DataError)


class Result(StrEnum):
    """What a worker did with one message."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    DEVICE_UPDATED = "device_updated"
    REJECTED = "rejected"
    DELETION = "deletion"


@dataclass(frozen=True, slots=True)
class Handled:
    """A message whose fate is committed: ``outcome`` for a stored event, ``reason`` for a
    rejected message."""

    decoded: Decoded | None
    result: Result
    outcome: EventOutcome | None = None
    reason: str | None = None


@dataclass(slots=True)
class IngestStats:
    """Counters since the worker was built (each has one writer thread; read copies)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    device_updates: int = 0
    rejected: int = 0
    deletions: int = 0
    db_retries: int = 0
    connects: int = 0
    receipts: int = 0


@dataclass(frozen=True, slots=True)
class _Received:
    message: mqtt.MQTTMessage
    generation: int
    received_at: datetime


class UnknownDevice(Exception):
    """The message's device is not an enabled gate registered at the topic's site."""


class _Devices:
    """The gates a batch's messages come from, with their schools, looked up in one query; and
    the reason a device is refused."""

    def __init__(self, db: Session, topics: Iterable[tuple[str, str]]) -> None:
        self._db = db
        self._found: dict[tuple[str, str], tuple[Device, School] | str] = {}
        wanted = sorted(set(topics))
        for chunk in in_chunks(wanted):
            for device, school, site in db.exec(
                select(Device, School, Site.code)
                .join(Site, col(Site.id) == Device.site_id)
                .join(School, col(School.id) == Site.school_id)
                .where(tuple_(col(Site.code), col(Device.device_id)).in_(chunk))
            ):
                disabled = f"device {device.device_id!r} at site {site!r} is disabled"
                self._found[(site, device.device_id)] = (
                    (device, school) if device.enabled else disabled
                )

    def get(self, site: str, device: str) -> tuple[Device, School]:
        key = (site, device)
        if key not in self._found:
            self._found[key] = self._unknown(site, device)
        found = self._found[key]
        if isinstance(found, str):
            raise UnknownDevice(found)
        return found

    def _unknown(self, site: str, device: str) -> str:
        elsewhere = self._db.exec(
            select(Site.code)
            .join(Device, col(Device.site_id) == Site.id)
            .where(Device.device_id == device)
        ).all()
        if elsewhere:
            return (
                f"device {device!r} claims site {site!r} but is registered at "
                f"{', '.join(repr(s) for s in elsewhere)}"
            )
        return f"device {device!r} is not registered at site {site!r}"


def store_batch(db: Session, items: Sequence[tuple[Decoded, datetime]]) -> list[Handled]:
    """Apply decoded messages (each with when it was received) inside the caller's transaction,
    which commits them or not; returns what became of each, in order. The items must not repeat
    an ``event_id`` (a repeat is the caller's to match with its first copy)."""
    devices = _Devices(db, ((d.topic.site, d.topic.device or "") for d, _ in items))
    handled: list[Handled | None] = [None] * len(items)
    events: list[tuple[int, Event, Device, School]] = []
    for index, (decoded, _) in enumerate(items):
        topic = decoded.topic
        assert topic.device is not None  # every channel ingest subscribes to is per device
        try:
            device, school = devices.get(topic.site, topic.device)
        except UnknownDevice as exc:
            handled[index] = Handled(decoded, Result.REJECTED, reason=str(exc))
            continue
        message = decoded.message
        if isinstance(message, Event):
            events.append((index, message, device, school))
        else:
            _update_device(db, device, message)
            handled[index] = Handled(decoded, Result.DEVICE_UPDATED)
    if events:
        for index, result in _store_events(db, events, items):
            handled[index] = result
    assert all(h is not None for h in handled)
    return handled  # type: ignore[return-value]


def _update_device(db: Session, device: Device, message: Message) -> None:
    if isinstance(message, Status):
        device.status = message.state
        device.agent_version = message.version
        device.model_pack = message.model_pack
        device.gallery_version = message.gallery_version
        if message.state == "online":
            device.last_seen_at = _latest(device.last_seen_at, message.ts)
    elif isinstance(message, Telemetry):
        device.last_telemetry = message.model_dump(mode="json")
        device.last_seen_at = _latest(device.last_seen_at, message.ts)
    db.add(device)


def _latest(current: datetime | None, ts: datetime) -> datetime:
    return ts if current is None else max(current, ts)


def _store_events(
    db: Session,
    events: list[tuple[int, Event, Device, School]],
    items: Sequence[tuple[Decoded, datetime]],
) -> Iterator[tuple[int, Handled]]:
    """Store the raw events (a repeat of a stored one stores nothing) and count the new ones."""
    calendar, directory = Calendar(db), Directory(db, (event for _, event, _, _ in events))
    placements = {
        index: place_gate_event(calendar, directory, event, school)
        for index, event, _, school in events
    }
    rows = [
        {
            "event_id": event.event_id,
            "device_id": device.id,
            "ts": event.ts,
            "received_at": items[index][1],
            "student_id": placements[index].student.id if placements[index].student else None,
            "outcome": placements[index].outcome,
            "payload": event.model_dump(mode="json"),
        }
        for index, event, device, _ in sorted(events, key=lambda e: e[1].event_id)
    ]
    inserted = insert_or_ignore(db, RawEvent, rows, ["event_id"], returning=["event_id"])
    new = {row.event_id for row in inserted}
    apply_gate_events(
        db,
        (
            (placements[index], event)
            for index, event, _, _ in events
            if event.event_id in new and placements[index].outcome is EventOutcome.COUNTED
        ),
    )
    # A card whose face check failed changes no attendance, but its owner's guardians hear of it.
    outbox.enqueue_for_changes(
        db,
        outbox.card_mismatches(
            (placements[index], event) for index, event, _, _ in events if event.event_id in new
        ),
    )
    for index, event, _, _ in events:
        result = Result.STORED if event.event_id in new else Result.DUPLICATE
        yield index, Handled(items[index][0], result, placements[index].outcome)


def _event_id(decoded: Decoded | None) -> UUID | None:
    message = decoded.message if decoded is not None else None
    return message.event_id if isinstance(message, Event) else None


def receipts(handled: Iterable[Handled]) -> Iterator[tuple[str, Receipt]]:
    """The receipts owed for committed messages: for each gate, the ids of its events that are
    now in the database (stored, or found stored before), on its ``stored`` topic, at most
    :data:`~broker.payloads.MAX_RECEIPT_IDS` per message. Rejected messages are owed nothing."""
    by_gate: dict[str, dict[UUID, None]] = {}
    for item in handled:
        decoded = item.decoded
        if decoded is None or item.result not in (Result.STORED, Result.DUPLICATE):
            continue
        if isinstance(decoded.message, Event) and decoded.topic.device is not None:
            stored = device_topic(Channel.STORED, decoded.topic.site, decoded.topic.device)
            by_gate.setdefault(stored, {})[decoded.message.event_id] = None
    now = utc_now()
    for topic, ids in by_gate.items():
        listed = list(ids)
        for start in range(0, len(listed), MAX_RECEIPT_IDS):
            yield topic, Receipt(ts=now, event_ids=listed[start : start + MAX_RECEIPT_IDS])


class IngestWorker:
    """One MQTT consumer and the thread that writes what it receives."""

    def __init__(
        self,
        settings: ServerSettings,
        engine: Engine,
        *,
        index: int = 0,
        on_committed: Callable[[list[Handled]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.client_id = f"{settings.mqtt.client_id}-{index}"
        self._on_committed = on_committed
        self._queue: queue.SimpleQueue[_Received] = queue.SimpleQueue()
        self._stats = IngestStats()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._log_extra = {"worker": self.client_id}
        self._client = self._build_client()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying while the broker is away) and start writing."""
        mqtt_settings = self.settings.mqtt
        log.info(
            "ingest worker starting",
            extra={**self._log_extra, "host": mqtt_settings.host, "port": mqtt_settings.port},
        )
        self._client.connect_async(
            mqtt_settings.host, mqtt_settings.port, keepalive=mqtt_settings.keepalive_s
        )
        self._client.loop_start()
        self._thread = threading.Thread(target=self._write_loop, name=self.client_id, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch being written, then disconnect; the broker keeps what is not
        acknowledged for this worker's session."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        log.info("ingest worker stopped", extra={**self._log_extra, **asdict(self.stats)})

    def wait_subscribed(self, timeout: float | None = None) -> bool:
        """Block until the broker has granted the subscriptions; False if ``timeout`` passed."""
        return self._subscribed.wait(timeout)

    @property
    def stats(self) -> IngestStats:
        """A snapshot of the counters."""
        return replace(self._stats)

    # --- MQTT (paho's network thread) -----------------------------------------------------------

    def _build_client(self) -> mqtt.Client:
        settings = self.settings.mqtt
        # MQTT 3.1.1 with a persistent session (clean_session off): the broker keeps what this
        # client id has not acknowledged until it comes back (Mosquitto: for
        # persistent_client_expiration). Not MQTT 5: paho parses v5 properties on every message,
        # which cost a third of ingest's throughput, and the embedded broker speaks only 3.1.1.
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
        if settings.ca_file is not None:
            client.tls_set(ca_certs=str(settings.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any, _props: Any
    ) -> None:
        if reason_code.is_failure:
            log.error(
                "broker refused the connection",
                extra={**self._log_extra, "reason": str(reason_code)},
            )
            return
        with self._ack_lock:
            self._generation += 1
        self._stats.connects += 1
        group = self.settings.mqtt.share_group or None
        client.subscribe([(subscription(channel, share=group), 1) for channel in CHANNELS])
        log.info(
            "ingest worker connected",
            extra={**self._log_extra, "session_present": flags.session_present},
        )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _props: Any
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        if not self._stopping.is_set():
            log.warning(
                "ingest worker disconnected; reconnecting",
                extra={**self._log_extra, "reason": str(reason_code)},
            )

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, codes: list, _props: Any
    ) -> None:
        refused = [str(code) for code in codes if code.is_failure]
        if refused:
            log.error(
                "broker refused the subscriptions",
                extra={**self._log_extra, "reasons": ",".join(refused)},
            )
            return
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._stats.received += 1
        self._queue.put(_Received(message, self._generation, utc_now()))

    # --- the writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        batch_max = self.settings.ingest.batch_max
        while not self._stopping.is_set():
            try:
                batch = [self._queue.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < batch_max:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._handle(batch)

    def _handle(self, batch: list[_Received]) -> None:
        firsts: list[tuple[_Received, Decoded]] = []
        repeats: list[tuple[_Received, Decoded]] = []
        seen: set[UUID] = set()
        handled: list[tuple[_Received, Handled]] = []
        for item in batch:
            if _is_deletion(item.message):
                handled.append((item, Handled(None, Result.DELETION)))
                continue
            try:
                decoded = decode(item.message.topic, item.message.payload)
            except (PayloadError, UnicodeDecodeError) as exc:
                handled.append((item, Handled(None, Result.REJECTED, reason=str(exc))))
                continue
            event_id = _event_id(decoded)
            (repeats if event_id in seen else firsts).append((item, decoded))
            if event_id is not None:
                seen.add(event_id)
        committed = self._commit(firsts)
        handled += committed
        # A repeat within the batch shares the fate of the copy that arrived first.
        fate = {_event_id(h.decoded): h for _, h in committed if h.decoded is not None}
        for item, decoded in repeats:
            first = fate.get(_event_id(decoded))
            if first is not None:  # else not committed (stopping): leave it to the broker
                result = Result.DUPLICATE if first.result is Result.STORED else first.result
                handled.append((item, replace(first, decoded=decoded, result=result)))
        for item, result in handled:
            self._ack(item)
            self._count(item, result)
        self._send_receipts(result for _, result in handled)
        if self._on_committed is not None and handled:
            self._on_committed([result for _, result in handled])

    def _commit(self, items: list[tuple[_Received, Decoded]]) -> list[tuple[_Received, Handled]]:
        """Store ``items`` in one transaction, retrying database errors until it commits; the
        items returned are committed (all of them, unless the worker is stopping)."""
        if not items:
            return []
        delay = self.settings.ingest.retry_min_delay_s
        while not self._stopping.is_set():
            try:
                with session_scope(self.engine, write=True) as db:
                    results = store_batch(db, [(d, item.received_at) for item, d in items])
                return [(item, result) for (item, _), result in zip(items, results, strict=True)]
            except _POISON as exc:
                if len(items) > 1:
                    # One bad message must not hold back the others: isolate it.
                    return [done for item in items for done in self._commit([item])]
                item, decoded = items[0]
                log.error(
                    "unstorable message acknowledged",
                    extra={
                        **self._log_extra,
                        "topic": item.message.topic,
                        "payload": item.message.payload.decode(errors="replace"),
                        "error": str(exc.orig),
                    },
                )
                return [(item, Handled(decoded, Result.REJECTED, reason=f"unstorable: {exc.orig}"))]
            except Exception as exc:
                # The database is away, locked or deadlocked, or a bug: keep the messages (not
                # acknowledged) and try again; giving up here would lose them.
                self._stats.db_retries += 1
                log.warning(
                    "database write failed; retrying",
                    extra={
                        **self._log_extra,
                        "messages": len(items),
                        "retry_in_s": delay,
                        "error": _short(exc),
                    },
                    exc_info=not isinstance(exc, SQLAlchemyError),
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, self.settings.ingest.retry_max_delay_s)
        return []

    def _send_receipts(self, handled: Iterable[Handled]) -> None:
        """Publish the receipts for a committed batch. paho queues them and returns at once;
        nothing here may stop ingest, since the worst a missing receipt does is a repeat."""
        for topic, receipt in receipts(handled):
            try:
                self._client.publish(topic, encode(receipt), qos=1)
            except Exception:
                log.exception("receipt not sent", extra={**self._log_extra, "topic": topic})
                continue
            self._stats.receipts += 1

    def _ack(self, item: _Received) -> None:
        with self._ack_lock:
            if item.generation == self._generation:
                self._client.ack(item.message.mid, item.message.qos)

    def _count(self, item: _Received, handled: Handled) -> None:
        stats = self._stats
        if handled.result is Result.STORED:
            stats.stored += 1
        elif handled.result is Result.DUPLICATE:
            stats.duplicates += 1
        elif handled.result is Result.DEVICE_UPDATED:
            stats.device_updates += 1
        elif handled.result is Result.DELETION:
            stats.deletions += 1
        else:
            stats.rejected += 1
            log.warning(
                "message rejected",
                extra={**self._log_extra, "topic": _topic(item.message), "reason": handled.reason},
            )


def _is_deletion(message: mqtt.MQTTMessage) -> bool:
    """Whether ``message`` deletes a retained status or telemetry message (zero-length payload,
    MQTT's way): the broker passes the deletion on to subscribers, and it is no bad payload."""
    if message.payload:
        return False
    try:
        return parse_topic(message.topic).channel in _RETAINABLE
    except (TopicError, UnicodeDecodeError):
        return False


def _topic(message: mqtt.MQTTMessage) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:
        return "(topic is not UTF-8)"


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


class StopSignal(Protocol):
    """A threading or multiprocessing Event."""

    def wait(self, timeout: float | None = None) -> bool: ...


def run_worker(
    settings: ServerSettings,
    index: int,
    stop: StopSignal,
    *,
    on_committed: Callable[[list[Handled]], None] | None = None,
    on_ready: Callable[[bool], None] | None = None,
) -> IngestStats:
    """Run worker ``index`` on its own engine until ``stop`` is set; return its counters.

    ``on_ready`` hears whether the broker granted the subscriptions (within 30 s)."""
    engine = create_db_engine(settings.database_url)
    worker = IngestWorker(settings, engine, index=index, on_committed=on_committed)
    worker.start()
    try:
        subscribed = worker.wait_subscribed(30)
        if not subscribed:
            log.error("no subscription granted in 30 s", extra={"worker": worker.client_id})
        if on_ready is not None:
            on_ready(subscribed)
        stop.wait()
    finally:
        worker.stop()
        engine.dispose()
    return worker.stats


class _StopOrOrphaned:
    """Set when the parent says stop, or once the parent is gone: a worker must not outlive
    the service that started it (nor keep its client id from a restarted one)."""

    def __init__(self, stop: StopSignal, parent: int) -> None:
        self._stop = stop
        self._parent = parent

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.wait(1.0):
            if os.getppid() != self._parent:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True


def _worker_process(
    settings: ServerSettings,
    index: int,
    stop: StopSignal,
    parent: int,
    initializer: Callable[..., None] | None,
    initargs: tuple,
) -> None:
    if initializer is not None:
        initializer(*initargs)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    run_worker(settings, index, _StopOrOrphaned(stop, parent))


class IngestProcesses:
    """``count`` ingest workers, each in a process of its own: a worker is CPU-bound in Python,
    so one per core is what scales (threads would share one interpreter lock)."""

    def __init__(
        self,
        settings: ServerSettings,
        count: int,
        *,
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._processes = [
            context.Process(
                target=_worker_process,
                args=(settings, index, self._stop, os.getpid(), initializer, initargs),
                name=f"ingest-{index}",
            )
            for index in range(count)
        ]

    def start(self) -> None:
        for process in self._processes:
            process.start()

    def failed(self) -> list[str]:
        """Workers that ended without being told to (to restart the service)."""
        return [p.name for p in self._processes if not p.is_alive() and not self._stop.is_set()]

    def stop(self, timeout: float = 20.0) -> None:
        """Ask every worker to finish its batch and disconnect; kill those that do not."""
        self._stop.set()
        for process in self._processes:
            process.join(timeout)
            if process.is_alive():
                log.error("ingest worker did not stop; killing it", extra={"worker": process.name})
                process.kill()
