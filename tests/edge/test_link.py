"""GateLink against a real Mosquitto over TLS with the gate's own credential.

The server side is a plain paho subscriber with a persistent session, like ingest, that answers
each event with a receipt on the gate's ``stored`` topic as ingest does after its commit (unless
a test holds the receipts back). To know that nothing more is on its way, a test has the gate
republish its status after the events: the broker forwards one publisher's messages to a
subscriber in the order it received them, so once that status arrives, every event the gate sent
before it has arrived too.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from broker.codec import decode, encode
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import (
    MAX_RECEIPT_IDS,
    Command,
    CommandAck,
    Event,
    GalleryNotice,
    GateConfig,
    Message,
    Receipt,
    Status,
    Telemetry,
    utc_now,
)
from broker.topics import Channel, device_topic, gallery_topic
from edge.link import CommandFailed, CommandResult, GateLink, LinkSettings
from edge.outbox import Outbox
from tests.edge.gate_writer import card_event
from tests.fixtures.mosquitto import MosquittoInstance, connect
from tests.fixtures.netcut import NetCut

ROOT = Path(__file__).resolve().parents[2]
GATE_1 = "school-a.gate-1"
INFLIGHT = 20
EVENTS = device_topic(Channel.EVENTS, "school-a", "gate-1")
STATUS = device_topic(Channel.STATUS, "school-a", "gate-1")
TELEMETRY = device_topic(Channel.TELEMETRY, "school-a", "gate-1")
ACK = device_topic(Channel.ACK, "school-a", "gate-1")
CONFIG = device_topic(Channel.CONFIG, "school-a", "gate-1")
CMD = device_topic(Channel.CMD, "school-a", "gate-1")
STORED = device_topic(Channel.STORED, "school-a", "gate-1")
GALLERY = gallery_topic("school-a")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition`` to hold; fail naming ``what`` if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Server:
    """The server's side of the broker: a persistent session on the loopback listener that
    reads events, status and acks, publishes config, gallery notices and commands, and answers
    each event with a receipt while ``receipting`` is on."""

    def __init__(self, broker: MosquittoInstance) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.receipting = True
        self._subscribed = threading.Event()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id="server-test",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        client.username_pw_set(SERVER_USERNAME, broker.passwords[SERVER_USERNAME])
        client.reconnect_delay_set(0.1, 0.5)
        topics = [(EVENTS, 1), (STATUS, 1), (TELEMETRY, 1), (ACK, 1)]
        client.on_connect = lambda c, *_: c.subscribe(topics)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", broker.port(tls=False), keepalive=30)
        client.loop_start()
        self.client = client
        if not self._subscribed.wait(5):
            raise TimeoutError("the server subscriber got no SUBACK")

    def _on_message(
        self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        if self.receipting and message.topic.endswith("/events"):
            event = decode(message.topic, message.payload).message
            stored = device_topic(Channel.STORED, event.site, event.device)
            client.publish(stored, encode(Receipt(ts=utc_now(), event_ids=[event.event_id])), 1)
        self.messages.put(message)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def receipt(self, *event_ids: str, topic: str = STORED) -> None:
        """Tell the gate these events are stored."""
        ids = [uuid.UUID(event_id) for event_id in event_ids]
        self.publish(topic, encode(Receipt(ts=utc_now(), event_ids=ids)))

    def events_until(self, done: Callable[[Counter[str]], bool], timeout: float = 10.0) -> Counter:
        """Copies received of each event id, counted until ``done`` says that is enough."""
        deadline = time.monotonic() + timeout
        copies: Counter[str] = Counter()
        while not done(copies):
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            decoded = decode(message.topic, message.payload).message
            if isinstance(decoded, Event):
                copies[str(decoded.event_id)] += 1
        return copies

    def next(self, topic: str, timeout: float = 10.0) -> Message:
        """The next message on ``topic``, decoded; messages on other topics are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            if message.topic == topic:
                return decode(message.topic, message.payload).message

    def events_until_status(self, gallery_version: int, timeout: float = 10.0) -> list[str]:
        """Event ids received, in order, until the gate's status with this gallery version."""
        deadline = time.monotonic() + timeout
        event_ids = []
        while True:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            decoded = decode(message.topic, message.payload).message
            if isinstance(decoded, Event):
                event_ids.append(str(decoded.event_id))
            elif isinstance(decoded, Status) and decoded.gallery_version == gallery_version:
                return event_ids

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Gate:
    """A GateLink with its outbox and what its callbacks received."""

    link: GateLink
    outbox: Outbox
    configs: queue.Queue[GateConfig] = field(default_factory=queue.Queue)
    galleries: queue.Queue[GalleryNotice] = field(default_factory=queue.Queue)
    commands: list[Command] = field(default_factory=list)

    def send(self, count: int) -> list[str]:
        """Record ``count`` card events; their event ids in the order they were put."""
        events = [card_event("school-a", "gate-1") for _ in range(count)]
        for event in events:
            self.link.send_event(event)
        return [str(event.event_id) for event in events]

    def mark(self, gallery_version: int) -> None:
        """Once the server's receipts have emptied the outbox, republish the status as a
        marker behind every recorded event (see the module docstring)."""
        wait_until(lambda: self.outbox.depth() == 0, "the outbox to drain")
        self.link.update_status(model_pack="dlib-r29-mtcnn", gallery_version=gallery_version)


def gate_settings(broker: MosquittoInstance, port: int | None = None) -> LinkSettings:
    return LinkSettings(
        host="127.0.0.1",
        port=port or broker.port(tls=True),
        site="school-a",
        device="gate-1",
        password=broker.passwords[GATE_1],
        ca_file=broker.layout.cafile,
        inflight=INFLIGHT,
        reconnect_min_delay_s=0.1,
        reconnect_max_delay_s=0.5,
        telemetry_interval_s=0.1,
    )


@pytest.fixture
def server(mosquitto: MosquittoInstance) -> Iterator[Server]:
    server = Server(mosquitto)
    yield server
    server.close()


@pytest.fixture
def make_gate(mosquitto: MosquittoInstance, tmp_path: Path) -> Iterator[Callable[..., Gate]]:
    """Build (not start) gates on a fresh outbox; each is stopped and closed at teardown."""
    gates: list[Gate] = []

    def make(
        on_command: Callable[[Command], CommandResult] = lambda _command: {},
        port: int | None = None,
        telemetry: Callable[[], Telemetry] | None = None,
        **settings: float,
    ) -> Gate:
        outbox = Outbox(tmp_path / f"outbox-{len(gates)}.db")
        configs: queue.Queue[GateConfig] = queue.Queue()
        galleries: queue.Queue[GalleryNotice] = queue.Queue()
        commands: list[Command] = []

        def run(command: Command) -> CommandResult:
            commands.append(command)
            return on_command(command)

        link = GateLink(
            LinkSettings.model_validate(gate_settings(mosquitto, port).model_dump() | settings),
            outbox,
            version="0.1.0",
            on_config=configs.put,
            on_gallery=galleries.put,
            on_command=run,
            telemetry=telemetry,
            model_pack="dlib-r29-mtcnn",
            gallery_version=0,
        )
        gate = Gate(link, outbox, configs, galleries, commands)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.link.stop()
        gate.outbox.close()


# --- events -------------------------------------------------------------------------------------


def test_events_reach_the_server_in_outbox_order(make_gate, server: Server) -> None:
    gate = make_gate()
    expected = gate.send(30)  # recorded before the link starts
    gate.link.start()
    assert gate.link.wait_connected(10)
    expected += gate.send(70)
    gate.mark(1)

    assert server.events_until_status(1) == expected
    stats = gate.link.stats
    assert (stats.sent, stats.acked, stats.receipted, stats.rejected) == (100, 100, 100, 0)
    assert stats.resent == 0


def test_gate_keeps_events_while_the_broker_is_down_and_delivers_each_once(
    make_gate, server: Server, mosquitto: MosquittoInstance
) -> None:
    gate = make_gate()
    gate.link.start()
    assert gate.link.wait_connected(10)
    before = gate.send(10)
    gate.mark(1)
    assert server.events_until_status(1) == before

    mosquitto.stop()
    wait_until(lambda: not gate.link.stats.connected, "the gate to notice")
    during = gate.send(30)
    assert gate.outbox.depth() == 30
    mosquitto.start()

    assert gate.link.wait_connected(10)
    gate.mark(2)
    assert server.events_until_status(2) == during
    assert gate.link.stats.reconnects == 1


def test_gate_started_while_the_broker_is_down_connects_when_it_comes_up(
    make_gate, server: Server, mosquitto: MosquittoInstance
) -> None:
    mosquitto.stop()
    gate = make_gate()
    gate.link.start()
    expected = gate.send(5)
    mosquitto.start()

    assert gate.link.wait_connected(10)
    gate.mark(1)
    assert server.events_until_status(1) == expected


def test_events_in_flight_when_the_connection_drops_are_resent_in_order(
    make_gate, server: Server, mosquitto: MosquittoInstance
) -> None:
    cable = NetCut(mosquitto.port(tls=True))
    try:
        gate = make_gate(port=cable.port)
        gate.link.start()
        assert gate.link.wait_connected(10)
        expected = gate.send(5)
        gate.mark(1)
        assert server.events_until_status(1) == expected

        cable.cut()
        lost = gate.send(2 * INFLIGHT)
        wait_until(lambda: gate.link.stats.sent == 5 + INFLIGHT, "a full window in flight")
        cable.restore()
        # Keep recording while the gate reconnects: these must not overtake the ones paho
        # retransmits after the CONNACK.
        during = gate.send(20)
        assert gate.link.wait_connected(10)
        gate.mark(2)

        assert server.events_until_status(2) == lost + during
        assert gate.link.stats.reconnects >= 1
    finally:
        cable.close()


def _gate_process(
    broker: MosquittoInstance, outbox: Path, count: int, hold: bool = False
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(Path(__file__).with_name("gate_writer.py")),
        f"--outbox={outbox}",
        f"--port={broker.port(tls=True)}",
        f"--ca-file={broker.layout.cafile}",
        f"--count={count}",
        f"--inflight={INFLIGHT}",
    ]
    if hold:
        command.append("--hold")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CG_GATE_PASSWORD": broker.passwords[GATE_1]}
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _read_line(process: subprocess.Popen[str]) -> str:
    line = process.stdout.readline()
    assert line, f"the gate process ended early (exit {process.wait(5)})"
    return line.strip()


def test_a_gate_killed_mid_stream_loses_nothing_already_in_its_outbox(
    server: Server, mosquitto: MosquittoInstance, tmp_path: Path
) -> None:
    path = tmp_path / "killed-gate.db"
    process = _gate_process(mosquitto, path, count=2000)
    try:
        assert _read_line(process) == "connected"
        put = [_read_line(process).removeprefix("put ") for _ in range(100)]
        # Freeze the broker for the rest, so that the kill finds events in every state: sent and
        # acknowledged, in flight (on the wire, not acknowledged), and not yet sent.
        mosquitto.process.send_signal(signal.SIGSTOP)
        put += [_read_line(process).removeprefix("put ") for _ in range(200)]
        process.send_signal(signal.SIGKILL)
        process.wait(5)
    finally:
        mosquitto.process.send_signal(signal.SIGCONT)
        process.kill()
        process.wait(5)

    with Outbox(path) as outbox:
        waiting = {item.event_id for item in outbox.pending(limit=10_000)}
        link = GateLink(
            gate_settings(mosquitto),
            outbox,
            version="0.1.0",
            on_config=lambda _config: None,
            on_gallery=lambda _notice: None,
            on_command=lambda _command: {},
        )
        link.start()
        try:
            wait_until(lambda: outbox.depth() == 0, "the restarted gate to drain the outbox")
            link.update_status(model_pack=None, gallery_version=1)
            received = server.events_until_status(1)
        finally:
            link.stop()

    counts = Counter(received)
    repeated = {event_id for event_id, n in counts.items() if n > 1}
    print(f"killed after {len(put)} puts with {len(waiting)} in the outbox; {len(repeated)} twice")
    assert len(waiting) >= 200  # none of those put while the broker was frozen was receipted
    assert set(put) <= set(counts)  # nothing lost
    # Only what still waited for its receipt was sent again, each once more at most: a receipted
    # event was forgotten for good, and no event was sent again before its receipt timed out.
    assert repeated <= waiting
    assert max(counts.values()) <= 2
    first_copies = list(dict.fromkeys(received))
    assert first_copies[: len(put)] == put  # in the order they were put


# --- receipts -----------------------------------------------------------------------------------


def test_an_event_without_a_receipt_is_sent_again_after_the_timeout_and_kept_until_receipted(
    make_gate, server: Server
) -> None:
    server.receipting = False
    gate = make_gate(receipt_timeout_s=0.2, receipt_timeout_max_s=0.4)
    gate.link.start()
    assert gate.link.wait_connected(10)
    sent = gate.send(3)

    copies = server.events_until(lambda seen: all(seen[e] >= 2 for e in sent))
    assert set(copies) == set(sent)
    assert gate.outbox.depth() == 3  # acknowledged by the broker, again and again: still kept
    assert gate.link.stats.resent >= 3

    server.receipting = True  # the server is back: the next copies are answered
    wait_until(lambda: gate.outbox.depth() == 0, "the receipts to empty the outbox")
    assert gate.link.stats.receipted == 3


def test_events_without_a_receipt_are_sent_again_at_once_after_a_reconnect(
    make_gate, server: Server, mosquitto: MosquittoInstance
) -> None:
    server.receipting = False
    cable = NetCut(mosquitto.port(tls=True))
    try:
        # An hour's timeout: only the reconnect can explain a second copy within the test.
        gate = make_gate(port=cable.port, receipt_timeout_s=3600.0, receipt_timeout_max_s=3600.0)
        gate.link.start()
        assert gate.link.wait_connected(10)
        sent = gate.send(3)
        server.events_until(lambda seen: set(seen) == set(sent))
        wait_until(lambda: gate.link.stats.acked == 3, "the broker's PUBACKs")

        cable.restore()
        copies = server.events_until(lambda seen: set(seen) == set(sent))
        assert gate.link.stats.reconnects == 1
        assert gate.link.stats.resent == 3
        assert list(copies) == sent  # oldest first
    finally:
        cable.close()
    server.receipt(*sent)
    wait_until(lambda: gate.outbox.depth() == 0, "the receipts to empty the outbox")


def test_a_receipt_for_unknown_events_is_ignored(make_gate, server: Server) -> None:
    server.receipting = False
    gate = make_gate()
    gate.link.start()
    assert gate.link.wait_connected(10)
    first, second = gate.send(2)
    server.events_until(lambda seen: set(seen) == {first, second})

    server.receipt(str(uuid.uuid4()))
    server.receipt(first)  # receipts are handled in order: once this one is, so was the other
    wait_until(lambda: gate.link.stats.receipted == 1, "the receipt for the first event")

    assert [item.event_id for item in gate.outbox.pending()] == [second]
    assert (gate.link.stats.receipts, gate.link.stats.rejected) == (2, 0)


def test_a_malformed_receipt_is_rejected_and_logged_and_changes_nothing(
    make_gate, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.receipting = False
    gate = make_gate()
    gate.link.start()
    assert gate.link.wait_connected(10)
    (event_id,) = gate.send(1)
    server.events_until(lambda seen: event_id in seen)
    valid = json.loads(encode(Receipt(ts=utc_now(), event_ids=[uuid.UUID(event_id)])))

    bad = [
        b"not json",
        json.dumps(valid | {"event_ids": [event_id.upper() + "-x"]}).encode(),
        json.dumps(valid | {"event_ids": []}).encode(),
        json.dumps(valid | {"event_ids": [event_id] * (MAX_RECEIPT_IDS + 1)}).encode(),
        json.dumps(valid | {"device": "gate-2"}).encode(),
        json.dumps({k: v for k, v in valid.items() if k != "ts"}).encode(),
    ]
    with caplog.at_level(logging.WARNING, logger="edge.link"):
        for payload in bad:
            server.publish(STORED, payload)
        wait_until(lambda: gate.link.stats.rejected == len(bad), "every bad receipt rejected")

    rejected = [r for r in caplog.records if r.getMessage() == "message rejected"]
    assert [r.topic for r in rejected] == [STORED] * len(bad)
    assert "event_ids" in rejected[2].reason and "device" in rejected[4].reason
    assert (gate.outbox.depth(), gate.link.stats.receipts) == (1, 0)

    server.receipt(event_id)  # the gate still takes a good one
    wait_until(lambda: gate.outbox.depth() == 0, "the good receipt")


def test_a_gate_cannot_forge_or_read_another_gates_receipts(
    make_gate, server: Server, mosquitto: MosquittoInstance
) -> None:
    server.receipting = False
    gate = make_gate()
    gate.link.start()
    assert gate.link.wait_connected(10)
    first, second = gate.send(2)
    server.events_until(lambda seen: set(seen) == {first, second})

    other = mosquitto.client("school-a.gate-2")
    inbox: queue.Queue[str] = queue.Queue()
    other.on_message = lambda _c, _u, message: inbox.put(message.topic)
    subscribed: queue.Queue = queue.Queue()
    other.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
    assert connect(mosquitto, other) == 0  # stopped with the broker
    # Mosquitto grants the subscription and enforces the ACL on each delivery instead.
    other_stored = device_topic(Channel.STORED, "school-a", "gate-2")
    other.subscribe([(STORED, 1), (other_stored, 1)])
    subscribed.get(timeout=5)
    forged = Receipt(ts=utc_now(), event_ids=[uuid.UUID(first), uuid.UUID(second)])
    other.publish(STORED, encode(forged), qos=1).wait_for_publish(5)

    # The broker handled the forgery before this genuine receipt reached it, and delivers to
    # a subscriber in the order it handled messages: once this one is in, so would that be.
    server.receipt(first)
    wait_until(lambda: gate.link.stats.receipted == 1, "the genuine receipt")
    assert [item.event_id for item in gate.outbox.pending()] == [second]
    assert gate.link.stats.receipts == 1

    # The server wrote gate-1's receipt before gate-2's: had gate-2 been let read it, it
    # would have arrived first.
    server.receipt(str(uuid.uuid4()), topic=other_stored)
    assert inbox.get(timeout=5) == other_stored
    assert inbox.empty()


# --- status and last will -----------------------------------------------------------------------


def test_status_is_retained_online_then_offline_after_stop(
    make_gate, server: Server, mosquitto: MosquittoInstance
) -> None:
    gate = make_gate()
    gate.link.start()
    assert gate.link.wait_connected(10)
    online = server.next(STATUS)
    assert (online.state, online.version) == ("online", "0.1.0")
    assert (online.model_pack, online.gallery_version) == ("dlib-r29-mtcnn", 0)

    gate.link.stop()
    assert server.next(STATUS).state == "offline"

    late_joiner: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client = mosquitto.client(SERVER_USERNAME, tls=False, client_id="late-joiner")
    client.on_message = lambda _c, _u, message: late_joiner.put(message)
    assert connect(mosquitto, client, tls=False) == 0
    client.subscribe(STATUS, qos=1)
    retained = late_joiner.get(timeout=5)
    assert retained.retain
    assert decode(retained.topic, retained.payload).message.state == "offline"


def test_last_will_marks_a_killed_gate_offline(
    server: Server, mosquitto: MosquittoInstance, tmp_path: Path
) -> None:
    process = _gate_process(mosquitto, tmp_path / "gate.db", count=0, hold=True)
    try:
        assert _read_line(process) == "connected"
        assert server.next(STATUS).state == "online"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(5)
    assert server.next(STATUS).state == "offline"


# --- config, gallery and commands ---------------------------------------------------------------


def _config(revision: int) -> GateConfig:
    return GateConfig(
        revision=revision,
        ts=utc_now(),
        direction="in",
        match_threshold=0.6,
        min_face_px=40,
        detect_fps=10.0,
        cooldown_s=120,
        require_face=False,
    )


def test_config_and_gallery_reach_their_callbacks_and_bad_ones_are_rejected(
    make_gate, server: Server
) -> None:
    gate = make_gate()
    gate.link.start()
    assert gate.link.wait_connected(10)
    server.next(STATUS)  # the gate's subscriptions were sent before its online status

    notice = GalleryNotice(
        site="school-a",
        version=7,
        ts=utc_now(),
        model_pack="dlib-r29-mtcnn",
        entries=120,
        url="https://server.example/api/gallery/7",
        sha256="ab" * 32,
        size_bytes=123_456,
        key_id="gallery-2025",
        signature="A" * 86 + "==",
    )
    config = _config(3)
    server.publish(CONFIG, b'{"revision": "not a number"}', retain=True)
    server.publish(CONFIG, encode(config), retain=True)
    server.publish(GALLERY, encode(notice), retain=True)

    assert gate.configs.get(timeout=5) == config
    assert gate.galleries.get(timeout=5) == notice
    assert gate.link.stats.rejected == 1
    assert gate.link.stats.connected


def test_a_command_is_answered_on_the_ack_topic(make_gate, server: Server) -> None:
    def handle(command: Command) -> CommandResult:
        if command.name == "snapshot":
            raise CommandFailed("no camera frame yet")
        return {"beeps": int(command.args.get("times", 1))}

    gate = make_gate(on_command=handle)
    gate.link.start()
    assert gate.link.wait_connected(10)
    server.next(STATUS)

    def command(name: str, **extra) -> Command:
        return Command(cmd_id=uuid.uuid4(), ts=utc_now(), name=name, **extra)

    beep = command("test-beep", args={"times": 2})
    snapshot = command("snapshot")
    stale = command("reload", expires_at=utc_now() - timedelta(seconds=1))
    for sent in (beep, snapshot, stale):
        server.publish(CMD, encode(sent))

    acks: dict[uuid.UUID, CommandAck] = {}
    for _ in range(3):
        ack = server.next(ACK)
        acks[ack.cmd_id] = ack
    assert (acks[beep.cmd_id].ok, acks[beep.cmd_id].result) == (True, {"beeps": 2})
    assert (acks[snapshot.cmd_id].ok, acks[snapshot.cmd_id].detail) == (
        False,
        "no camera frame yet",
    )
    assert (acks[stale.cmd_id].ok, acks[stale.cmd_id].detail) == (False, "expired")
    assert [c.name for c in gate.commands] == ["test-beep", "snapshot"]  # not the expired one


def test_telemetry_is_published_every_interval(make_gate, server: Server) -> None:
    def sample() -> Telemetry:
        return Telemetry(
            site="school-a",
            device="gate-1",
            ts=utc_now(),
            fps_in=30.0,
            fps_processed=12.5,
            frames_dropped=3,
            outbox_depth=gate.outbox.depth(),
            mem_rss_mb=180.0,
            uptime_s=1.0,
        )

    gate = make_gate(telemetry=sample)
    gate.link.start()

    samples = [server.next(TELEMETRY) for _ in range(2)]
    assert [(s.fps_processed, s.outbox_depth) for s in samples] == [(12.5, 0), (12.5, 0)]
