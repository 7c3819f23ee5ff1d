"""A parent's notification preferences in the browser: channels (on/off and order), kinds, quiet
hours and the digest saved through the form are what the API then returns; a half-filled quiet
window is refused in Vietnamese and saves nothing; an opt-out made from a message's link is
taken back from the page; the page in English; the page at 360 px.

The school offers two channels here (Web Push and an SMS gateway), so there is an order to
choose; nothing is sent in this module, so the gateway's address is never called."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from server.db import writer
from server.models import AuditLog, Guardian, User
from server.notify.models import NotificationOptOut
from tests.web.conftest import sign_in
from tests.web.harness import LiveSchool

ALL_KINDS = ["arrived", "left", "late", "absent", "excused", "card_without_face"]


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[LiveSchool]:
    """The harness's school whose own channels are Web Push and SMS (set through the
    environment the server inherits)."""
    live = LiveSchool.create(tmp_path_factory.mktemp("live"))
    push = {
        "kind": "webpush",
        "vapid_private_key": live.vapid.private,
        "vapid_subject": "mailto:admin@school-a.edu.vn",
    }
    sms = {"kind": "generic_sms", "method": "GET", "url": "http://127.0.0.1:9/sms?to=$phone"}
    channels = {str(live.world.school.id): {"push": push, "sms": sms}}
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CAMPUSGATE_SERVER__NOTIFY__SCHOOL_CHANNELS", json.dumps(channels))
            live.start()
        yield live
    finally:
        live.stop()


@pytest.fixture
def page(browser: Browser, school: LiveSchool) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=school.url)
    page = context.new_page()
    sign_in(page, school, LiveSchool.PARENT)
    yield page
    context.close()


def preferences(page: Page) -> dict[str, Any]:
    """The child's preferences as the API returns them to this signed-in parent."""
    answer = page.request.get("/api/v1/me/notification-preferences")
    assert answer.ok, answer.text()
    [child] = answer.json()["children"]
    return child


def prefs_form(page: Page, school: LiveSchool) -> Locator:
    assert school.parent_child is not None
    return page.locator(f'form.prefs[data-student="{school.parent_child.id}"]')


def box(form: Locator, name: str) -> Locator:
    """The checkbox labelled exactly ``name``."""
    return form.get_by_role("checkbox", name=name, exact=True)


def updates(school: LiveSchool) -> int:
    with Session(school.engine) as db:
        return db.exec(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.action == "notification_preferences.update")
        ).one()


def test_the_saved_preferences_are_what_the_api_returns(page: Page, school: LiveSchool) -> None:
    form = prefs_form(page, school)
    channels = form.locator(".channel")
    expect(channels).to_have_count(2)
    expect(channels.first).to_have_attribute("data-channel", "push")
    assert preferences(page)["channels"] == ["push"]

    box(form, "Tin nhắn SMS").check()
    form.get_by_role("button", name="Ưu tiên hơn: Tin nhắn SMS").click()
    expect(channels.first).to_have_attribute("data-channel", "sms")
    box(form, "Rời trường").uncheck()
    box(form, "Quẹt thẻ không khớp khuôn mặt").uncheck()
    form.get_by_label("Bắt đầu").fill("21:30")
    form.get_by_label("Kết thúc").fill("06:30")
    box(form, "Chỉ nhận một bản tóm tắt mỗi ngày").check()
    form.get_by_role("button", name="Lưu").click()

    expect(page.locator("#toast")).to_have_text("Đã lưu")
    saved = preferences(page)
    assert saved["channels"] == ["sms", "push"]
    assert saved["kinds"] == ["arrived", "late", "absent", "excused"]
    assert saved["quiet_hours"] == {"start": "21:30:00", "end": "06:30:00"}
    assert saved["digest"] is True

    page.reload()
    form = prefs_form(page, school)
    expect(form.locator(".channel").first).to_have_attribute("data-channel", "sms")
    expect(box(form, "Tin nhắn SMS")).to_be_checked()
    expect(box(form, "Thông báo trình duyệt")).to_be_checked()
    expect(box(form, "Rời trường")).not_to_be_checked()
    expect(form.get_by_label("Bắt đầu")).to_have_value("21:30")
    expect(box(form, "Chỉ nhận một bản tóm tắt mỗi ngày")).to_be_checked()

    box(form, "Tin nhắn SMS").uncheck()
    form.get_by_label("Bắt đầu").fill("")
    form.get_by_label("Kết thúc").fill("")
    for kind in ("Rời trường", "Quẹt thẻ không khớp khuôn mặt"):
        box(form, kind).check()
    box(form, "Chỉ nhận một bản tóm tắt mỗi ngày").uncheck()
    form.get_by_role("button", name="Lưu").click()

    expect(page.locator("#toast")).to_have_text("Đã lưu")
    cleared = preferences(page)
    assert (cleared["channels"], cleared["kinds"]) == (["push"], ALL_KINDS)
    assert (cleared["quiet_hours"], cleared["digest"]) == (None, False)


def test_a_parent_takes_back_an_opt_out_made_from_a_message(page: Page, school: LiveSchool) -> None:
    with Session(writer(school.engine)) as db:
        guardian = db.exec(
            select(Guardian)
            .join(User, col(User.id) == Guardian.user_id)
            .where(User.username == LiveSchool.PARENT)
        ).one()
        db.add_all(
            [
                NotificationOptOut(guardian_id=guardian.id, channel="sms", kind="arrived"),
                NotificationOptOut(guardian_id=guardian.id, channel="push", kind="all"),
            ]
        )
        db.commit()
    try:
        page.reload()
        stopped = page.locator("#opted-out")
        expect(stopped).to_contain_text("Tin đã ngừng nhận từ liên kết trong tin nhắn")
        expect(stopped.locator("li")).to_have_text(
            [
                "Thông báo trình duyệt — Mọi loại tin Nhận lại",
                "Tin nhắn SMS — Đến trường Nhận lại",
            ]
        )
        stopped.get_by_role("button", name="Nhận lại: Tin nhắn SMS — Đến trường").click()
        expect(stopped.locator("li")).to_have_count(1)
        assert preferences(page)["opted_out"] == [{"channel": "push", "kind": "all"}]
        # The other by keyboard: focus the button, press Enter.
        stopped.get_by_role("button", name="Nhận lại: Thông báo trình duyệt — Mọi loại tin").press(
            "Enter"
        )
        expect(stopped).to_have_count(0)
        assert preferences(page)["opted_out"] == []
    finally:
        with Session(writer(school.engine)) as db:
            db.exec(delete(NotificationOptOut))
            db.commit()


@pytest.mark.parametrize(("start", "end"), [("21:30", ""), ("", "06:30"), ("07:00", "07:00")])
def test_an_invalid_quiet_window_is_refused_in_vietnamese_and_saves_nothing(
    page: Page, school: LiveSchool, start: str, end: str
) -> None:
    before, audited = preferences(page), updates(school)
    form = prefs_form(page, school)
    box(form, "Tin nhắn SMS").check()
    box(form, "Chỉ nhận một bản tóm tắt mỗi ngày").check()
    form.get_by_label("Bắt đầu").fill(start)
    form.get_by_label("Kết thúc").fill(end)
    form.get_by_role("button", name="Lưu").click()

    expect(form.get_by_role("alert")).to_have_text(
        "Giờ yên lặng cần cả giờ bắt đầu và giờ kết thúc, khác nhau; để trống cả hai nếu "
        "không cần. Chưa lưu gì"
    )
    expect(form.get_by_label("Bắt đầu")).to_be_focused()
    assert preferences(page) == before
    assert updates(school) == audited


def test_the_language_switch_shows_the_english_labels(page: Page, school: LiveSchool) -> None:
    page.get_by_role("link", name="EN").click()

    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="How to hear from the school")).to_be_visible()
    form = prefs_form(page, school)
    expect(form.get_by_role("group", name="Channels")).to_be_visible()
    expect(box(form, "SMS")).to_be_visible()
    expect(box(form, "Only one summary a day")).to_be_visible()
    expect(form.get_by_role("group", name="Quiet hours (nothing is sent)")).to_be_visible()
    expect(form.get_by_role("button", name="Save")).to_be_visible()
    expect(page.get_by_role("button", name="Send a leave request")).to_be_visible()

    form.get_by_label("From").fill("22:00")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("alert")).to_contain_text("Quiet hours need both a start and an end")

    page.get_by_role("link", name="VI").click()
    expect(page.get_by_role("heading", name="Nhận tin thế nào")).to_be_visible()


def test_the_parent_page_fits_a_phone_screen(browser: Browser, school: LiveSchool) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, base_url=school.url)
    page = context.new_page()
    sign_in(page, school, LiveSchool.PARENT)
    assert school.parent_child is not None
    expect(page.locator(f"#child-{school.parent_child.id}")).to_be_visible()
    expect(prefs_form(page, school)).to_be_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
    context.close()
