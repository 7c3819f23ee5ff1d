"""Opting out from the message itself: the signed link stops one kind on one channel, for the
messages already queued and for those to come; a forged link changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from server.notify.models import NotificationOptOut
from server.notify.opt_out import (
    OptOut,
    OptOutError,
    apply_opt_out,
    opt_out_token,
    read_opt_out_token,
)
from server.notify.outbox import AttendanceChange, enqueue_for_changes
from server.notify.templates import MessageKind
from tests.server.conftest import World, fresh
from tests.server.notify.family import NOW, SETTINGS, Recorder, add_guardian, dispatcher, outbox

SECRET = SETTINGS.opt_out_secret
assert SECRET is not None


def happened(db: Session, world: World, kind: MessageKind, days_later: int = 0) -> None:
    at = NOW + timedelta(days=days_later)
    enqueue_for_changes(db, [AttendanceChange(world.students[0].id, kind, at)], now=at)
    db.commit()


def test_the_link_in_a_message_stops_that_kind_on_that_channel_only(
    db: Session, engine: Engine, world: World
) -> None:
    guardian = add_guardian(db, world.students[0], "Trần Thị Mai", channels=("zalo", "mail"))
    happened(db, world, MessageKind.ARRIVED)
    zalo = Recorder("zalo")
    with dispatcher(engine, zalo) as worker:
        worker.run_once()
    [message] = zalo.sent
    prefix = "https://truong.example.vn/notify/opt-out/"
    assert message.opt_out_url and message.opt_out_url.startswith(prefix)
    token = message.opt_out_url.removeprefix(prefix)

    expected = OptOut(guardian.id, "arrived", "zalo")
    assert apply_opt_out(db, SECRET, token) == expected
    assert apply_opt_out(db, SECRET, token) == expected  # following it twice is harmless
    db.commit()
    assert len(fresh(db).exec(select(NotificationOptOut)).all()) == 1

    happened(db, world, MessageKind.ARRIVED, days_later=1)
    happened(db, world, MessageKind.LEFT, days_later=1)
    later = {(row.kind, row.channel) for row in outbox(db)[1:]}
    assert later == {("arrived", "mail"), ("left", "zalo")}


def test_a_message_queued_before_the_opt_out_is_not_sent(
    db: Session, engine: Engine, world: World
) -> None:
    guardian = add_guardian(db, world.students[0], "Trần Thị Mai", channels=("zalo",))
    happened(db, world, MessageKind.ABSENT)
    apply_opt_out(db, SECRET, opt_out_token(SECRET, OptOut(guardian.id, "absent", "zalo")))
    db.commit()
    zalo = Recorder("zalo")
    with dispatcher(engine, zalo) as worker:
        worker.run_once()
    assert zalo.sent == []
    [row] = outbox(db)
    assert row.status == "skipped" and "no longer wants" in row.reason


def test_opting_out_of_every_channel_leaves_nothing_to_queue(db: Session, world: World) -> None:
    guardian = add_guardian(db, world.students[0], "Trần Thị Mai", channels=("zalo",))
    apply_opt_out(db, SECRET, opt_out_token(SECRET, OptOut(guardian.id, "all", "zalo")))
    db.commit()
    happened(db, world, MessageKind.LATE)
    assert outbox(db) == []


def test_a_forged_or_altered_token_is_refused(db: Session, world: World) -> None:
    guardian = add_guardian(db, world.students[0], "Trần Thị Mai")
    token = opt_out_token(SECRET, OptOut(guardian.id, "arrived", "sms"))
    someone_else = token.replace(f"{guardian.id}.", f"{guardian.id + 1}.", 1)
    for bad in (someone_else, token[:-2], "arrived.sms", ""):
        with pytest.raises(OptOutError):
            read_opt_out_token(SECRET, bad)
    with pytest.raises(OptOutError, match="signature"):
        read_opt_out_token(SecretStr("another-servers-secret"), token)
    gone = opt_out_token(SECRET, OptOut(guardian.id + 100, "arrived", "sms"))
    with pytest.raises(OptOutError, match="no longer exists"):
        apply_opt_out(db, SECRET, gone)
