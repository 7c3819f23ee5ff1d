"""A homeroom teacher's day in the browser: sign in, watch a gate's event appear on the roll
without reloading, correct a status with a reason, and find the correction in the audit log."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session, col, select

from server.models import AuditLog
from tests.web.conftest import sign_in
from tests.web.harness import LiveSchool


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    yield context.new_page()
    context.close()


def open_roll(page: Page, school: LiveSchool) -> None:
    sign_in(page, school, LiveSchool.TEACHER)
    expect(page).to_have_url(f"{school.url}/teacher")
    page.get_by_role("link", name="Mở điểm danh").click()
    expect(page.locator("#live")).to_have_text("Trực tiếp")


def row(page: Page, school: LiveSchool, index: int):
    return page.locator(f"#student-{school.world.students[index].id}")


def test_a_gate_event_appears_on_the_roll_without_reload(page: Page, school: LiveSchool) -> None:
    open_roll(page, school)
    arriving = row(page, school, 1)
    expect(arriving).to_have_attribute("data-status", "not_yet")
    expect(page.locator('#counts [data-status="not_yet"]')).to_have_text("3")
    page.evaluate("window.sameDocument = true")

    event = school.gate_event(school.world.students[1], gate="gate-2")

    expect(arriving).to_have_attribute("data-status", "present")
    local = event.ts.astimezone(school.world.school.zone).strftime("%H:%M")
    expect(arriving.locator(".in")).to_have_text(f"{local} · gate-2")
    expect(page.locator('#counts [data-status="present"]')).to_have_text("1")
    expect(page.locator('#counts [data-status="not_yet"]')).to_have_text("2")
    assert page.evaluate("window.sameDocument") is True


def test_a_correction_with_a_reason_is_saved_live_and_audited(
    page: Page, browser: Browser, school: LiveSchool
) -> None:
    open_roll(page, school)
    student = school.world.students[2]
    row(page, school, 2).get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Trạng thái").select_option("excused")
    dialog.get_by_role("button", name="Lưu").click()
    expect(dialog.get_by_role("alert")).to_have_text("Hãy ghi lý do")

    dialog.get_by_label("Lý do").fill("Mẹ gọi điện báo con bị sốt")
    dialog.get_by_role("button", name="Lưu").click()

    expect(dialog).to_be_hidden()
    expect(row(page, school, 2)).to_have_attribute("data-status", "excused")
    expect(row(page, school, 2)).to_contain_text("Mẹ gọi điện báo con bị sốt")
    with Session(school.engine) as db:
        entry = db.exec(
            select(AuditLog)
            .where(AuditLog.action == "attendance.manual_change", AuditLog.student_id == student.id)
            .order_by(col(AuditLog.id).desc())
        ).first()
    assert entry is not None
    assert entry.actor_id == school.world.teacher.id
    assert entry.detail["after"]["status"] == "excused"
    assert entry.detail["note"] == "Mẹ gọi điện báo con bị sốt"

    admin = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(admin, school, LiveSchool.ADMIN)
    admin.goto(f"{school.url}/admin/audit")
    expect(admin.locator("#audit-body")).to_contain_text("attendance.manual_change")
    expect(admin.locator("#audit-body")).to_contain_text("Mẹ gọi điện báo con bị sốt")
    admin.context.close()


def test_the_server_stops_while_a_live_roll_is_open(page: Page, school: LiveSchool) -> None:
    """Last in this module: it stops the module's server."""
    open_roll(page, school)
    assert school.process is not None
    school.process.terminate()
    try:
        code = school.process.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail("the server still runs a minute after SIGTERM, held by the open stream")
    assert code == 0, school.log()
    expect(page.locator("#live")).to_have_text("Mất kết nối, đang thử lại…")
