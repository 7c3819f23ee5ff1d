"""Faults survived with nothing lost and nothing doubled, on the whole system (SQLite).

One :class:`~tests.system.harness.System` serves the module: Mosquitto, two ingest worker
processes, a dispatcher process, the local SMS gateway and push service. Each test enrolls its
own students (one guardian each), walks them through one gate while it breaks one part, and
counts: every pass the gate recorded is stored once, each student has one attendance row, each
guardian got one message (at the provider, per idempotency key).

The network cut lasts a minute (``CAMPUSGATE_NETCUT_S`` seconds, default 60): many times the
test gates' 5 s MQTT keepalive, so the gate itself finds the link dead and keeps trying to
reconnect into the silence, instead of only resuming a connection that never noticed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from edge.clock import GateClock
from server.models import Attendance, RawEvent
from server.notify.models import Notification
from tests.fixtures.netcut import NetCut
from tests.system.harness import PASSES, System, read_line, walk

CUT_S = float(os.environ.get("CAMPUSGATE_NETCUT_S", "60"))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("system")
    running = System(tmp, f"sqlite:///{tmp / 'campusgate.db'}")
    yield running
    running.close()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_broker_restarted_during_a_burst(system: System, how: signal.Signals) -> None:
    """Stopped: Mosquitto (2.0.11 here) does not restore the workers' shared subscriptions
    ($share/ingest/...) from its persistence file, so it acknowledges and drops what the gate
    publishes after the restart until the workers subscribe again. Killed: it saves nothing on
    the way down, so what it held in memory (messages queued for the workers, receipts on
    their way to the gate) is gone too. Either way the gate forgets an event only on the
    server's receipt, so it publishes those again, and nothing is lost or counted twice."""
    batch = system.enroll(f"B{how.name[3]}", PASSES)
    third = PASSES // 3
    with system.gate("gate-1") as gate:
        sent = walk(gate, batch.codes[:third])
        broker = system.broker.process
        assert broker is not None
        broker.send_signal(how)
        broker.wait(10)
        # Down for about two seconds while students keep passing: the gate keeps them.
        sent += walk(gate, batch.codes[third : 2 * third], interval_s=2.0 / third)
        system.broker.start()
        sent += walk(gate, batch.codes[2 * third :])
        gate.wait_drained(60)
        reconnects = gate.link.stats.reconnects
    assert reconnects >= 1  # the restart really cut the gate off
    system.settle(f"broker {how.name}", batch, sent).assert_nothing_lost_or_doubled()


def test_ingest_worker_killed_mid_ingest_and_restarted(system: System) -> None:
    batch = system.enroll("WK", PASSES)
    with system.gate("gate-2") as gate:
        sent = walk(gate, batch.codes, at={PASSES // 2: lambda: system.kill("ingest-0")})
        system.start_worker(0)  # the same client id: its persistent session, with what it held
        gate.wait_drained(60)
    system.settle("ingest worker SIGKILL", batch, sent).assert_nothing_lost_or_doubled()


def test_gate_killed_and_restarted_keeps_what_its_outbox_held(system: System) -> None:
    batch = system.enroll("GK", PASSES)
    outbox = system.tmp / "outbox-gate-3.db"
    first = system.start(
        "gate-3", "gate", "gate-3", str(outbox), ",".join(batch.codes), pass_interval_s=0.05
    )
    sent = [read_line(first, 30).removeprefix("put ") for _ in range(PASSES // 2)]
    first.send_signal(signal.SIGSTOP)  # what it printed and what it stored hold still
    sent += _printed(first) + _waiting(outbox)
    system.kill("gate-3")
    sent = list(dict.fromkeys(sent))
    rest = batch.codes[len(sent) :]  # the students the dead gate never saw
    second = system.start("gate-3", "gate", "gate-3", str(outbox), ",".join(rest))
    sent += [read_line(second, 30).removeprefix("put ") for _ in rest]
    assert read_line(second, 60) == "drained"
    system.stop("gate-3")
    system.settle("gate SIGKILL", batch, sent).assert_nothing_lost_or_doubled()


def _printed(process) -> list[str]:
    lines = []
    while line := read_line(process, 0.5):
        lines.append(line.removeprefix("put "))
    return lines


def _waiting(path: Path) -> list[str]:
    """Event ids still in a (frozen) gate's outbox file, read without taking any lock."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return [event_id for (event_id,) in db.execute("SELECT event_id FROM outbox ORDER BY seq")]


def test_gate_network_cut_while_students_pass(system: System) -> None:
    batch = system.enroll("NC", PASSES)
    third = PASSES // 3
    cable = NetCut(system.config["gate_port"])
    try:
        with system.gate("gate-4", port=cable.port) as gate:
            sent = walk(gate, batch.codes[:third])
            cable.cut()
            sent += walk(gate, batch.codes[third : 2 * third], interval_s=CUT_S / third)
            held = gate.outbox.depth()
            noticed = not gate.link.wait_connected(0)
            cable.restore()
            sent += walk(gate, batch.codes[2 * third :])
            gate.wait_drained(60)
    finally:
        cable.close()
    assert held >= third  # nothing passed while the cable was out
    if 3 * gate.link.settings.keepalive_s < CUT_S:
        assert noticed, "the gate still thought itself connected at the end of the cut"
    system.settle(f"network cut {CUT_S:g} s", batch, sent).assert_nothing_lost_or_doubled()


def test_sms_gateway_500s_then_recovers(system: System) -> None:
    batch = system.enroll("SM", PASSES // 2, channels=("sms",))
    system.gateway.failing, errors_before = True, system.gateway.errors
    with system.gate("gate-5") as gate:
        sent = walk(gate, batch.codes)
        gate.wait_drained(60)
    deadline = time.monotonic() + 60
    while system.gateway.errors - errors_before < len(batch.codes):  # each tried, refused
        assert time.monotonic() < deadline, "the dispatcher stopped trying the gateway"
        time.sleep(0.1)
    system.gateway.failing = False
    tally = system.settle("SMS gateway 500s", batch, sent)
    tally.assert_nothing_lost_or_doubled()
    assert tally.detail["sms_requests"] > tally.notified  # the 500s were real attempts


def test_dispatcher_killed_mid_send_and_restarted(system: System) -> None:
    """The worst moment to die: the gateway has taken the SMS, the dispatcher has not heard so.
    Those rows stay ``sending`` under the dead dispatcher's lease; when it runs out the new one
    sends them again with the same RequestId, which eSMS turns away (code 124) and the dispatcher
    counts as accepted, so each parent still gets one SMS."""
    batch = system.enroll("DK", PASSES // 2, channels=("sms",))
    taken_before = len(system.sms.fake.sent)
    system.gateway.stalling = True
    with system.gate("gate-8") as gate:
        sent = walk(gate, batch.codes)
        gate.wait_drained(60)
    deadline = time.monotonic() + 60
    while len(system.sms.fake.sent) - taken_before < 2:  # taken, the answers not yet given
        assert time.monotonic() < deadline, "the dispatcher never sent"
        time.sleep(0.02)
    system.kill("dispatcher")
    in_limbo = len(system.sms.fake.sent) - taken_before
    system.gateway.stalling = False
    system.start("dispatcher", "dispatch")
    deadline = time.monotonic() + 120  # the dead dispatcher's lease (30 s) must run out first
    while system.count("", batch, sent).detail["open_notifications"]:
        assert time.monotonic() < deadline, "the rows the dead dispatcher held were never sent"
        time.sleep(0.5)
    tally = system.settle("dispatcher SIGKILL mid-send", batch, sent)
    tally.assert_nothing_lost_or_doubled()
    # The messages taken before the kill really were sent again, and turned away.
    assert tally.detail["sms_requests"] >= tally.notified + in_limbo


def test_gate_clock_jumps_back_and_forward_an_hour(system: System) -> None:
    """A hand-set step (``date -s``; the kernel then says "unsynchronised") must not move the
    stamps: the gate keeps the time it had (edge.clock), so each pass is stamped when it
    happened and attendance and the parents' messages carry the real time."""
    batch = system.enroll("CJ", PASSES)
    jump = [0.0]
    clock = GateClock(wall=lambda: time.time() + jump[0], synchronised=lambda: False)
    third = PASSES // 3
    back = lambda: jump.__setitem__(0, -3600.0)  # noqa: E731
    forward = lambda: jump.__setitem__(0, 3600.0)  # noqa: E731
    with system.gate("gate-6", clock=clock) as gate:
        sent = walk(gate, batch.codes, at={third: back, 2 * third: forward})
        gate.wait_drained(60)
    tally = system.settle("gate clock ±1 h", batch, sent)
    tally.assert_nothing_lost_or_doubled()

    with Session(system.engine) as db:
        received = _by_student(db, RawEvent.received_at, batch.ids)
        first_in = _by_student(db, Attendance.first_in, batch.ids)
        told = _by_student(db, Notification.event_at, batch.ids)
    skew = {
        student: max(abs(first_in[student] - at), abs(told[student] - at))
        for student, at in received.items()
    }
    off = {student: s for student, s in skew.items() if s > timedelta(minutes=5)}
    assert not off, f"stamped far from when they were received: {off}"


def _by_student(db: Session, column, students: list[int]) -> dict[int, datetime]:
    """``column`` of the rows of ``column``'s table about ``students``, by student id."""
    table = column.class_
    query = select(table.student_id, column).where(col(table.student_id).in_(students))
    return dict(db.exec(query).all())
