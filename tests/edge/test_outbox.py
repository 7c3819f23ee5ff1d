"""The outbox on real SQLite files: durable, ordered, bounded, safe to share between threads, and
an event leaves it only on the server's receipt."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from edge.outbox import Outbox, OutboxFull

TOPIC = "cg/v1/school-a/gate-1/events"


def _fill(outbox: Outbox, count: int, prefix: str = "e") -> list[int]:
    return [outbox.put(TOPIC, f"payload-{i}".encode(), f"{prefix}{i}") for i in range(count)]


def test_stored_events_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path) as outbox:
        seqs = _fill(outbox, 3)

    with Outbox(path) as reopened:
        items = reopened.pending()
        assert [item.seq for item in items] == seqs
        assert [item.event_id for item in items] == ["e0", "e1", "e2"]
        assert [item.payload for item in items] == [b"payload-0", b"payload-1", b"payload-2"]
        assert {item.topic for item in items} == {TOPIC}
        assert reopened.depth() == 3


def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    Outbox(path).close()
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_pending_returns_events_in_the_order_they_were_put(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        seqs = _fill(outbox, 10)
        assert seqs == sorted(seqs)
        assert [item.seq for item in outbox.pending(limit=100)] == seqs
        page = outbox.pending(after_seq=seqs[4], limit=3)
        assert [item.event_id for item in page] == ["e5", "e6", "e7"]


def test_a_seq_is_never_reused_after_the_outbox_empties(tmp_path: Path) -> None:
    # The link sends "everything after the last seq it handed over": a reused, smaller seq would
    # never be sent.
    path = tmp_path / "outbox.db"
    with Outbox(path) as outbox:
        first = outbox.put(TOPIC, b"x", "first")
        assert outbox.remove_stored(["first"]) == [first]
        assert outbox.depth() == 0
    with Outbox(path) as outbox:
        assert outbox.put(TOPIC, b"y", "second") > first


def test_a_repeated_event_id_is_stored_once(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        seq = outbox.put(TOPIC, b"original", "same")
        assert outbox.put(TOPIC, b"changed", "same") == seq
        assert outbox.depth() == 1
        assert outbox.pending()[0].payload == b"original"


def test_a_full_outbox_refuses_loudly_and_keeps_what_it_has(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(tmp_path / "outbox.db", capacity=3) as outbox:
        seqs = _fill(outbox, 3)

        with (
            caplog.at_level(logging.ERROR, logger="edge.outbox"),
            pytest.raises(OutboxFull, match=r"full \(3 of 3 events"),
        ):
            outbox.put(TOPIC, b"late", "late")
        assert any(record.levelno == logging.ERROR for record in caplog.records)
        assert [item.seq for item in outbox.pending()] == seqs
        assert outbox.put(TOPIC, b"again", "e1") == seqs[1]  # a repeat is still a no-op

        outbox.remove_stored(["e0"])
        outbox.put(TOPIC, b"late", "late")
        assert [item.event_id for item in outbox.pending()] == ["e1", "e2", "late"]


def test_a_pubacked_event_stays_until_its_receipt(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path) as outbox:
        seqs = _fill(outbox, 3)
        assert outbox.acknowledged(seqs[0], seqs[1]) == {seqs[0]: 1, seqs[1]: 1}
        assert outbox.acknowledged(seqs[0], 999_999) == {seqs[0]: 2}  # unknown seqs: nothing

        assert outbox.depth() == 3  # the broker took them; the server has not said so
        assert [(item.event_id, item.attempts) for item in outbox.pending()] == [
            ("e0", 2),
            ("e1", 1),
            ("e2", 0),
        ]
    with Outbox(path) as reopened:  # the attempts are on disk
        assert [item.attempts for item in reopened.items([seqs[1], seqs[0], 999_999])] == [2, 1]


def test_a_receipt_removes_its_events_and_ignores_unknown_ids(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.db") as outbox:
        seqs = _fill(outbox, 5)
        assert outbox.oldest_age_s() is not None and outbox.oldest_age_s() >= 0.0

        assert outbox.remove_stored(["e1", "e3", "not-here", "e1"]) == [seqs[1], seqs[3]]

        assert outbox.depth() == 3
        assert [item.event_id for item in outbox.pending()] == ["e0", "e2", "e4"]
        assert outbox.remove_stored(["e0", "e2", "e4"]) == [seqs[0], seqs[2], seqs[4]]
        assert outbox.depth() == 0
        assert outbox.oldest_age_s() is None
        assert outbox.acknowledged(*seqs) == {}  # a late PUBACK finds nothing to count


OLD_SCHEMA = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL
)
"""
"""The table as gates wrote it before receipts (deleted on PUBACK, no attempts)."""


def test_an_outbox_file_from_before_receipts_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as old:
        old.execute("PRAGMA journal_mode=WAL")
        old.execute(OLD_SCHEMA)
        for n in range(4):
            old.execute(
                "INSERT INTO outbox (event_id, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                (f"old{n}", TOPIC, f"payload-{n}".encode(), 1_700_000_000.0 + n),
            )
        old.execute("DELETE FROM outbox WHERE event_id = 'old3'")  # acknowledged under the old rule

    with Outbox(path) as outbox:
        items = outbox.pending()
        assert [(i.seq, i.event_id, i.payload, i.attempts) for i in items] == [
            (1, "old0", b"payload-0", 0),
            (2, "old1", b"payload-1", 0),
            (3, "old2", b"payload-2", 0),
        ]
        assert outbox.depth() == 3
        assert outbox.put(TOPIC, b"new", "new") == 5  # AUTOINCREMENT kept: no seq reused
        assert outbox.acknowledged(1) == {1: 1}
    with Outbox(path) as again:  # opening a migrated file changes nothing
        assert [(i.event_id, i.attempts) for i in again.pending()] == [
            ("old0", 1),
            ("old1", 0),
            ("old2", 0),
            ("new", 0),
        ]


def test_a_writer_and_a_sender_thread_share_the_outbox(tmp_path: Path) -> None:
    count = 400
    outbox = Outbox(tmp_path / "outbox.db")
    seen: list[str] = []
    written = threading.Event()

    def writer() -> None:
        _fill(outbox, count)
        written.set()

    def sender() -> None:
        last = 0
        while len(seen) < count:
            batch = outbox.pending(after_seq=last, limit=7)
            if not batch:
                written.wait(0.001)
                continue
            seen.extend(item.event_id for item in batch)
            last = batch[-1].seq
            outbox.acknowledged(*(item.seq for item in batch))
            outbox.remove_stored(item.event_id for item in batch)

    threads = [threading.Thread(target=writer), threading.Thread(target=sender)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()

    assert seen == [f"e{i}" for i in range(count)]
    assert outbox.depth() == 0
    outbox.close()
