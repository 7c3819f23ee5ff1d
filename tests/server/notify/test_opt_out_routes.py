"""The opt-out pages over real HTTP on each database: following the link only asks, confirming
(or a mail client's RFC 8058 one-click POST) stops that kind on that channel for the outbox, and a
forged link gets a 400 page and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from server import main
from server.api.deps import get_engine
from server.api.routes.notifications import get_notify_settings
from server.models import AuditLog, Guardian, Student
from server.notify.models import NotificationOptOut
from server.notify.opt_out import OPT_OUT_PATH, OptOut, opt_out_token
from server.notify.outbox import AttendanceChange, enqueue_for_changes
from server.notify.settings import NotifySection
from server.notify.templates import MessageKind
from tests.server.conftest import World, fresh
from tests.server.notify.family import NOW, SETTINGS, add_guardian, outbox

SECRET = SETTINGS.opt_out_secret
assert SECRET is not None


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """The server's app on the test database, with the notification test settings."""
    main.app.dependency_overrides[get_engine] = lambda: engine
    main.app.dependency_overrides[get_notify_settings] = lambda: SETTINGS
    with TestClient(main.app) as test_client:
        yield test_client
    main.app.dependency_overrides.clear()


@pytest.fixture
def mai(db: Session, world: World) -> Guardian:
    """A mother of Học sinh 1 (renamed Nguyễn Thị An) who wants messages on zalo, then sms."""
    child = world.students[0]
    child.full_name = "Nguyễn Thị An"
    db.add(child)
    db.commit()
    return add_guardian(db, child, "Trần Thị Mai", channels=("zalo", "sms"))


def link(guardian: Guardian, kind: str = "arrived", channel: str = "zalo") -> str:
    return f"{OPT_OUT_PATH}/{opt_out_token(SECRET, OptOut(guardian.id, kind, channel))}"


def happened(db: Session, student: Student, kind: MessageKind, days: int) -> None:
    at = NOW + timedelta(days=days)
    enqueue_for_changes(fresh(db), [AttendanceChange(student.id, kind, at)], now=at)
    db.commit()


def opt_outs(db: Session) -> set[tuple[int, str, str]]:
    rows = fresh(db).exec(select(NotificationOptOut)).all()
    return {(row.guardian_id, row.kind, row.channel) for row in rows}


def test_following_the_link_asks_first_and_changes_nothing(
    client: TestClient, db: Session, mai: Guardian
) -> None:
    page = client.get(link(mai))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "Ngừng nhận thông báo?" in text and "Stop these notifications?" in text
    assert text.index("Ngừng nhận") < text.index("Stop these")  # Vietnamese first
    assert "“đến trường”" in text and "“arrived”" in text
    assert "<strong>An</strong>" in text and "<strong>zalo</strong>" in text
    assert '<form method="post">' in text and "<script" not in text
    assert 'name="viewport"' in text
    assert opt_outs(db) == set()


def test_confirming_stops_that_kind_on_that_channel(
    client: TestClient, db: Session, world: World, mai: Guardian
) -> None:
    done = client.post(link(mai), data={"confirm": "1"})
    assert done.status_code == 200
    assert "Đã ngừng nhận thông báo" in done.text and "Notifications stopped" in done.text
    assert opt_outs(db) == {(mai.id, "arrived", "zalo")}
    assert client.post(link(mai)).status_code == 200  # following it twice is harmless
    assert opt_outs(db) == {(mai.id, "arrived", "zalo")}
    [entry, _] = fresh(db).exec(select(AuditLog).order_by(AuditLog.id)).all()
    assert entry.action == "notification.opt_out" and entry.actor_id is None
    assert entry.detail == {"guardian_id": mai.id, "kind": "arrived", "channel": "zalo"}

    happened(db, world.students[0], MessageKind.ARRIVED, days=1)
    happened(db, world.students[0], MessageKind.LEFT, days=1)
    assert {(row.kind, row.channel) for row in outbox(db)} == {
        ("arrived", "sms"),  # the next channel she wants
        ("left", "zalo"),  # another kind is not affected
    }


def test_a_mail_clients_one_click_post_works(
    client: TestClient, db: Session, world: World, mai: Guardian
) -> None:
    answer = client.post(
        link(mai, "all", "sms"),
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert "mọi thông báo" in answer.text
    assert opt_outs(db) == {(mai.id, "all", "sms")}
    client.post(link(mai, "all", "zalo"), data={"List-Unsubscribe": "One-Click"})
    happened(db, world.students[0], MessageKind.LATE, days=1)
    assert outbox(db) == []  # no channel left for her


def test_a_forged_or_stale_link_gets_a_400_page_and_changes_nothing(
    client: TestClient, db: Session, world: World, mai: Guardian
) -> None:
    good = link(mai)
    token = good.rpartition("/")[2]
    someone_else = token.replace(f"{mai.id}.", f"{mai.id + 1}.", 1)
    other_secret = opt_out_token(
        SecretStr("another-servers-secret"), OptOut(mai.id, "arrived", "zalo")
    )
    gone = opt_out_token(SECRET, OptOut(mai.id + 100, "arrived", "zalo"))
    for bad in (someone_else, token[:-2], other_secret, gone, "arrived.zalo", "x" * 150):
        for method in ("GET", "POST"):
            answer = client.request(method, f"{OPT_OUT_PATH}/{bad}")
            assert answer.status_code == 400, (method, bad)
            assert "Liên kết không hợp lệ" in answer.text and "Invalid link" in answer.text
    assert opt_outs(db) == set()
    assert fresh(db).exec(select(AuditLog)).all() == []


def test_without_a_secret_there_are_no_opt_out_links(
    client: TestClient, db: Session, mai: Guardian
) -> None:
    main.app.dependency_overrides[get_notify_settings] = lambda: NotifySection()
    for method in ("GET", "POST"):
        answer = client.request(method, link(mai))
        assert answer.status_code == 404
        assert "Chưa bật liên kết ngừng nhận" in answer.text
    assert opt_outs(db) == set()
