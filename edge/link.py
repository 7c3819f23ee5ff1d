"""The gate's MQTT link: events from the outbox to the broker, config, gallery and commands back.

Delivery guarantee: at least once, in outbox order. An event leaves the outbox only when the
server's receipt for it arrives (``cg/v1/{site}/{device}/stored``, sent once the transaction
holding it committed), not on the broker's PUBACK: a PUBACK means only that the broker took it,
and a broker can drop what it acknowledged (Mosquitto forgets shared subscriptions across a
restart). So a lost connection, a broker restart, a power cut or a SIGKILL never loses one; the
server drops repeats by ``event_id`` and answers a repeat with a receipt too. The first copy of
every event reaches the broker in ``seq`` order; repeats (after a crash, a retransmission whose
PUBACK was lost, or a receipt that did not come) can come later.

How the order holds (paho-mqtt 2.x, MQTT 3.1.1, ``clean_session=False``, QoS 1):

* A sender thread hands events to paho in ``seq`` order, at most ``inflight`` unacknowledged at a
  time, and remembers the highest ``seq`` it handed over. Each event is handed over once per
  process as a first send: paho keeps every unacknowledged message and, right after the next
  CONNACK, retransmits them itself in the order they were published (``_messages_reconnect_reset``
  marks them for resending; the CONNACK handler sends them).
* paho writes a message published while a reconnect is under way (socket open, CONNACK not yet
  handled) straight to the socket, ahead of those retransmissions. So the sender stops handing
  over when a reconnect begins (``on_pre_connect``, which paho calls with none of its locks held,
  taken under the same lock as every hand-over) and resumes only once nothing handed over is
  still unacknowledged, i.e. after paho's retransmissions have been acknowledged.
* The high-water mark lives in memory: a restarted process starts from the head of the outbox
  and sends everything still there again, in order.

How an event without a receipt is sent again (:mod:`edge.resend`): after its PUBACK it waits
``receipt_timeout_s``, doubling per attempt up to ``receipt_timeout_max_s``, and after a reconnect
it is due at once. Due events are handed over oldest first in whatever room the in-flight window
has left after first sends, so healing a backlog never delays a new pass. What the server may see
twice is bounded by the events sent and not yet receipted.

Incoming ``config``, ``gallery``, ``cmd`` and ``stored`` messages go through
:func:`broker.codec.decode`; a malformed one is logged with the reason and counted in
``stats.rejected``, never raised, and changes nothing. A receipt naming events this gate does not
hold (already removed, or never its own) removes nothing. The callbacks run on paho's network
thread: they must return quickly (hand long work, such as a gallery download or an outbox write,
to another thread) and may be called again with the same retained config or gallery after a
reconnect.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from broker.codec import PayloadError, decode, describe_errors, encode
from broker.payloads import (
    ArgValue,
    Command,
    CommandAck,
    Event,
    GalleryNotice,
    GateConfig,
    Receipt,
    Status,
    Telemetry,
    utc_now,
)
from broker.topics import ID_PATTERN, Channel, device_topic, gallery_topic
from edge.outbox import Outbox, OutboxItem
from edge.resend import ResendSchedule

log = logging.getLogger(__name__)

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]

RESENT_LOG_INTERVAL_S = 60.0
"""At most one log line per this long about events sent again for want of a receipt."""

CommandResult = Mapping[str, ArgValue]
"""What a command handler returns on success; it becomes the ack's ``result``."""


class BrokerSettings(BaseModel):
    """Where the gate's broker is and how the gate proves who it is (the ``[broker]`` section of
    the gate's configuration); checked at start-up, with the field named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8883, ge=1, le=65535)
    username: str | None = Field(default=None, description="Default: '{site}.{device}'.")
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        default=None, description="CA of the broker's certificate; None: plain TCP (loopback)."
    )
    client_cert: Path | None = None
    client_key: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=300)
    reconnect_min_delay_s: float = Field(default=1.0, gt=0.0, le=60.0)
    reconnect_max_delay_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    inflight: int = Field(
        default=20, ge=1, le=1000, description="Events sent and not yet acknowledged, at most."
    )
    receipt_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        le=3600.0,
        description="Publish an event again when the server's receipt has not come this long "
        "after the broker's PUBACK; the wait doubles with each attempt.",
    )
    receipt_timeout_max_s: float = Field(
        default=600.0, gt=0.0, le=86_400.0, description="The longest wait for a receipt."
    )

    @model_validator(mode="after")
    def _consistent(self) -> BrokerSettings:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if self.client_cert is not None and self.ca_file is None:
            raise ValueError("a client certificate needs TLS: set ca_file")
        if self.reconnect_min_delay_s > self.reconnect_max_delay_s:
            raise ValueError("reconnect_min_delay_s must not exceed reconnect_max_delay_s")
        if self.receipt_timeout_s > self.receipt_timeout_max_s:
            raise ValueError("receipt_timeout_s must not exceed receipt_timeout_max_s")
        return self


class LinkSettings(BrokerSettings):
    """Everything the link needs: the broker, and which gate this is."""

    site: Id
    device: Id
    telemetry_interval_s: float = Field(default=30.0, gt=0.0, le=3600.0)

    @property
    def client_id(self) -> str:
        """``{site}.{device}``: Mosquitto forces the client id to the username on the TLS
        listener, and the persistent session is keyed by it."""
        return f"{self.site}.{self.device}"


@dataclass(slots=True)
class LinkStats:
    """Counters since the link was built. The link's own copy is updated in place and each
    counter has a single writer thread (sender: sent, resent, acked, receipted; network:
    receipts, rejected, reconnects), so no lock is needed; :attr:`GateLink.stats` hands out
    copies. ``sent`` counts first sends, ``resent`` the events published again for want of a
    receipt, ``acked`` the broker's PUBACKs for events, ``receipts`` the receipt messages
    accepted and ``receipted`` the events they removed from the outbox."""

    connected: bool = False
    sent: int = 0
    resent: int = 0
    acked: int = 0
    receipts: int = 0
    receipted: int = 0
    rejected: int = 0
    reconnects: int = 0


class CommandFailed(Exception):
    """Raised by a command handler to answer ``ok=False`` with this message as the detail."""


_SendState = Literal["down", "draining", "ready"]


class GateLink:
    """One gate's MQTT session: publishes the outbox, status and telemetry; receives the rest."""

    def __init__(
        self,
        settings: LinkSettings,
        outbox: Outbox,
        *,
        version: str,
        on_config: Callable[[GateConfig], None],
        on_gallery: Callable[[GalleryNotice], None],
        on_command: Callable[[Command], CommandResult],
        telemetry: Callable[[], Telemetry] | None = None,
        model_pack: str | None = None,
        gallery_version: int | None = None,
    ) -> None:
        self.settings = settings
        self._outbox = outbox
        self._version = version
        self._on_config = on_config
        self._on_gallery = on_gallery
        self._on_command = on_command
        self._telemetry = telemetry
        site, device = settings.site, settings.device
        self._events_topic = device_topic(Channel.EVENTS, site, device)
        self._status_topic = device_topic(Channel.STATUS, site, device)
        self._telemetry_topic = device_topic(Channel.TELEMETRY, site, device)
        self._ack_topic = device_topic(Channel.ACK, site, device)
        self._inbound = (
            device_topic(Channel.CONFIG, site, device),
            device_topic(Channel.CMD, site, device),
            device_topic(Channel.STORED, site, device),
            gallery_topic(site),
        )
        self._log_extra = {"site": site, "device": device}

        self._status_lock = threading.Lock()
        self._model_pack = model_pack
        self._gallery_version = gallery_version

        self._stats = LinkStats()
        self._connected = threading.Event()
        self._ever_connected = False
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

        # Sender state. _send_lock guards _state, _unacked, _handed_seq and _resend and is held
        # across each hand-over to paho; on_pre_connect takes it too, so no hand-over straddles a
        # reconnect.
        self._send_lock = threading.Lock()
        self._state: _SendState = "down"
        self._unacked: dict[int, int] = {}  # paho mid -> outbox seq
        self._handed_seq = 0
        self._resend = ResendSchedule(settings.receipt_timeout_s, settings.receipt_timeout_max_s)
        self._wake = threading.Event()
        # on_publish runs while paho holds its message lock, so it only queues the mid: taking
        # _send_lock there could deadlock with a hand-over waiting for that lock inside publish().
        # Receipts are queued likewise: removing them from the outbox is a disk write.
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._receipts: queue.SimpleQueue[Receipt] = queue.SimpleQueue()
        self._resent_logged_at = -RESENT_LOG_INTERVAL_S  # sender thread only
        self._resent_unlogged = 0

        self._client = self._build_client()

    # --- public API -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with backoff while the broker is unreachable)
        and start sending whatever the outbox holds."""
        settings = self.settings
        self._client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        self._client.loop_start()
        self._spawn(self._send_loop, "link-sender")
        if self._telemetry is not None:
            self._spawn(partial(self._telemetry_loop, self._telemetry), "link-telemetry")
        log.info(
            "link starting",
            extra={
                **self._log_extra,
                "host": settings.host,
                "port": settings.port,
                "tls": settings.ca_file is not None,
                "outbox_depth": self._outbox.depth(),
            },
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the retained ``offline`` status (a clean disconnect suppresses the last will),
        then disconnect. Events without a receipt stay in the outbox for the next start."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._connected.is_set():
            info = self._client.publish(
                self._status_topic, self._status_payload("offline"), qos=1, retain=True
            )
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        log.info("link stopped", extra={**self._log_extra, "outbox_depth": self._outbox.depth()})

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until the broker has accepted the session; False if ``timeout`` passed first."""
        return self._connected.wait(timeout)

    @property
    def stats(self) -> LinkStats:
        """A snapshot of the counters."""
        return replace(self._stats, connected=self._connected.is_set())

    def send_event(self, event: Event) -> int:
        """Store an event in the outbox (durable when this returns) and wake the sender.

        Returns the outbox seq. Raises :class:`edge.outbox.OutboxFull` when the outbox is full,
        and ValueError for an event of another gate, which the broker's ACL would drop unseen.
        """
        settings = self.settings
        if (event.site, event.device) != (settings.site, settings.device):
            raise ValueError(
                f"event {event.event_id} names {event.site}/{event.device}, "
                f"but this gate is {settings.site}/{settings.device}"
            )
        seq = self._outbox.put(self._events_topic, encode(event), str(event.event_id))
        self._wake.set()
        return seq

    def publish_telemetry(self, telemetry: Telemetry) -> None:
        """Publish one telemetry sample at QoS 0: a lost sample is replaced by the next one."""
        self._client.publish(self._telemetry_topic, encode(telemetry), qos=0)

    def update_status(self, *, model_pack: str | None, gallery_version: int | None) -> None:
        """Record what the gate now runs and, when connected, republish the retained status."""
        with self._status_lock:
            self._model_pack = model_pack
            self._gallery_version = gallery_version
        if self._connected.is_set():
            self._publish_status("online")

    # --- paho client and callbacks (network thread) ---------------------------------------------

    def _build_client(self) -> mqtt.Client:
        settings = self.settings
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv311,  # the embedded amqtt broker speaks only 3.1.1
            clean_session=False,
        )
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username or settings.client_id, password)
        if settings.ca_file is not None:
            client.tls_set(
                ca_certs=str(settings.ca_file),
                certfile=str(settings.client_cert) if settings.client_cert else None,
                keyfile=str(settings.client_key) if settings.client_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.max_inflight_messages_set(settings.inflight)
        client.reconnect_delay_set(settings.reconnect_min_delay_s, settings.reconnect_max_delay_s)
        client.will_set(self._status_topic, self._status_payload("offline"), qos=1, retain=True)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        with self._send_lock:
            self._state = "down"
        # The will carries the time of this connection, not of the process start.
        client.will_set(self._status_topic, self._status_payload("offline"), qos=1, retain=True)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: mqtt.ReasonCode,
        _properties: Any,
    ) -> None:
        if reason_code.is_failure:
            log.error(
                "broker refused the connection",
                extra={**self._log_extra, "reason": str(reason_code)},
            )
            return
        with self._send_lock:
            resending = len(self._unacked)
            self._state = "draining" if resending else "ready"
            # The broker may have lost what it acknowledged before (a restart that forgot the
            # server's subscriptions): publish again whatever has no receipt, without waiting.
            awaiting_receipt = len(self._resend)
            self._resend.all_due(time.monotonic())
        if self._ever_connected:
            self._stats.reconnects += 1
        self._ever_connected = True
        self._connected.set()
        client.subscribe([(topic, 1) for topic in self._inbound])
        self._publish_status("online")
        self._wake.set()
        log.info(
            "connected",
            extra={
                **self._log_extra,
                "session_present": flags.session_present,
                "resending": resending,
                "awaiting_receipt": awaiting_receipt,
                "outbox_depth": self._outbox.depth(),
            },
        )

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        log.warning("broker unreachable; retrying", extra=self._log_extra)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: mqtt.ReasonCode,
        _properties: Any,
    ) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("disconnected", extra={**self._log_extra, "reason": str(reason_code)})

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[mqtt.ReasonCode],
        _properties: Any,
    ) -> None:
        for topic, code in zip(self._inbound, reason_codes, strict=False):
            if code.is_failure:
                log.error(
                    "subscription refused",
                    extra={**self._log_extra, "topic": topic, "reason": str(code)},
                )

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        _reason_code: mqtt.ReasonCode,
        _properties: Any,
    ) -> None:
        self._acks.put(mid)
        self._wake.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        try:
            if topic not in self._inbound:
                raise PayloadError(f"topic: {topic!r} is not one this gate subscribes to")
            decoded = decode(topic, message.payload)
        except PayloadError as exc:
            log.warning(
                "message rejected",
                extra={
                    **self._log_extra,
                    "topic": topic,
                    "reason": str(exc),
                    "bytes": len(message.payload),
                },
            )
            self._stats.rejected += 1  # counted once logged: whoever waits on it sees both
            return
        try:
            match decoded.message:
                case GateConfig() as config:
                    self._on_config(config)
                case GalleryNotice() as notice:
                    self._on_gallery(notice)
                case Command() as command:
                    self._answer(command)
                case Receipt() as receipt:
                    self._stats.receipts += 1
                    self._receipts.put(receipt)
                    self._wake.set()
        except Exception:
            log.exception("message handler failed", extra={**self._log_extra, "topic": topic})

    def _answer(self, command: Command) -> None:
        """Run a command unless it has expired, and publish its ack."""
        extra = {**self._log_extra, "cmd_id": str(command.cmd_id), "command": command.name}
        ok, detail, result = True, "", {}
        if command.expires_at is not None and command.expires_at <= utc_now():
            ok, detail = False, "expired"
        else:
            try:
                result = dict(self._on_command(command))
            except CommandFailed as exc:
                ok, detail = False, str(exc)
            except Exception as exc:
                log.exception("command failed", extra=extra)
                ok, detail = False, f"{type(exc).__name__}: {exc}"
        try:
            ack = self._ack(command, ok, detail[:1024], result)
        except ValidationError as exc:
            ack = self._ack(command, False, f"bad result: {describe_errors(exc)}"[:1024], {})
        self._client.publish(self._ack_topic, encode(ack), qos=1)
        log.info("command answered", extra={**extra, "ok": ack.ok, "detail": ack.detail})

    def _ack(
        self, command: Command, ok: bool, detail: str, result: dict[str, ArgValue]
    ) -> CommandAck:
        return CommandAck(
            site=self.settings.site,
            device=self.settings.device,
            cmd_id=command.cmd_id,
            ts=utc_now(),
            ok=ok,
            detail=detail,
            result=result,
        )

    def _status_payload(self, state: Literal["online", "offline"]) -> bytes:
        with self._status_lock:
            model_pack, gallery_version = self._model_pack, self._gallery_version
        return encode(
            Status(
                site=self.settings.site,
                device=self.settings.device,
                state=state,
                ts=utc_now(),
                version=self._version,
                model_pack=model_pack,
                gallery_version=gallery_version,
            )
        )

    def _publish_status(self, state: Literal["online", "offline"]) -> None:
        self._client.publish(self._status_topic, self._status_payload(state), qos=1, retain=True)

    # --- sender and telemetry threads -----------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"{name}-{self.settings.client_id}")
        thread.daemon = True
        thread.start()
        self._threads.append(thread)

    def _send_loop(self) -> None:
        """Settle receipts and acknowledgements and hand events over, whenever something changes
        or an event's wait for its receipt runs out."""
        self._wake.set()  # whatever the outbox held before the start
        while True:
            self._wake.wait(self._next_resend_s())
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._settle_receipts()
                self._settle_acks()
                self._hand_over()
            except Exception:
                # A disk error must not end the sender for good; try again shortly.
                log.exception("outbox sender failed; retrying", extra=self._log_extra)
                if self._stopping.wait(1.0):
                    return
                self._wake.set()

    def _next_resend_s(self) -> float | None:
        """How long the sender may sleep before an event is due again; None (until woken) when
        it could not hand one over anyway (not ready, or the window is full)."""
        with self._send_lock:
            if self._state != "ready" or len(self._unacked) >= self.settings.inflight:
                return None
            return self._resend.seconds_until_due(time.monotonic())

    def _settle_receipts(self) -> None:
        event_ids: list[str] = []
        while True:
            try:
                event_ids += (str(event_id) for event_id in self._receipts.get_nowait().event_ids)
            except queue.Empty:
                break
        if not event_ids:
            return
        with self._send_lock:
            removed = self._outbox.remove_stored(event_ids)
            self._resend.forget(removed)
        self._stats.receipted += len(removed)

    def _settle_acks(self) -> None:
        mids = []
        while True:
            try:
                mids.append(self._acks.get_nowait())
            except queue.Empty:
                break
        with self._send_lock:
            acked = {mid: self._unacked[mid] for mid in mids if mid in self._unacked}
            if not acked:
                return  # acks of status messages
            # Counted on disk before leaving the window, so the next wait for a receipt keeps
            # growing even across a restart of the gate.
            attempts = self._outbox.acknowledged(*acked.values())
            now = time.monotonic()
            for seq, count in attempts.items():
                self._resend.wait(seq, count, now)
            for mid in acked:
                del self._unacked[mid]
            if self._state == "draining" and not self._unacked:
                self._state = "ready"
        self._stats.acked += len(acked)

    def _hand_over(self) -> None:
        with self._send_lock:
            room = self.settings.inflight - len(self._unacked)
            if self._state != "ready" or room <= 0:
                return
            first = self._outbox.pending(after_seq=self._handed_seq, limit=room)
            for item in first:
                self._publish_event(item)
                self._handed_seq = item.seq
            room -= len(first)
            # New passes first: events without a receipt fill only the room left over.
            again = self._outbox.items(self._resend.take(time.monotonic(), room)) if room else []
            for item in again:
                self._publish_event(item)
        self._stats.sent += len(first)
        self._stats.resent += len(again)
        if again:
            self._log_resent(again)

    def _log_resent(self, again: list[OutboxItem]) -> None:
        """Say that events go out again for want of a receipt: at once the first time, then at
        most once a minute with the count since, so a long outage does not flood the log."""
        self._resent_unlogged += len(again)
        now = time.monotonic()
        if now < self._resent_logged_at + RESENT_LOG_INTERVAL_S:
            return
        log.info(
            "events sent again: no receipt yet",
            extra={
                **self._log_extra,
                "count": self._resent_unlogged,
                "oldest_seq": again[0].seq,
                "attempts": again[0].attempts,
                "outbox_depth": self._outbox.depth(),
            },
        )
        self._resent_logged_at, self._resent_unlogged = now, 0

    def _publish_event(self, item: OutboxItem) -> None:
        """Hand one event to paho; the caller holds the send lock."""
        info = self._client.publish(item.topic, item.payload, qos=1)
        self._unacked[info.mid] = item.seq

    def _telemetry_loop(self, sample: Callable[[], Telemetry]) -> None:
        while not self._stopping.wait(self.settings.telemetry_interval_s):
            if not self._connected.is_set():
                continue
            try:
                self.publish_telemetry(sample())
            except Exception:
                log.exception("telemetry sample failed", extra=self._log_extra)
