"""A homeroom teacher's other pages in the browser: deciding a parent's leave requests (an
approved one excuses the day on the live roll, audited; a rejected one changes no mark), the
student's history, the roll's CSV and Excel exports, and the roll's accessibility (labelled
correction dialog, usable at 360 px wide)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session, col, select

from server.models import (
    Attendance,
    AttendanceSource,
    AttendanceStatus,
    AuditLog,
    LeaveRequest,
    LeaveStatus,
    Student,
)
from tests.web.harness import PASSWORD, LiveSchool
from tests.web.test_teacher_roll import open_roll

PHONE = {"width": 360, "height": 740}
REPORT_COUNTS = (
    AttendanceStatus.PRESENT,
    AttendanceStatus.LATE,
    AttendanceStatus.ABSENT,
    AttendanceStatus.EXCUSED,
)
"""The report's count columns, in its order."""
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="vi-VN")
    yield context.new_page()
    context.close()


def today(school: LiveSchool) -> date:
    """Today on the school's clock (the day the roll shows)."""
    return datetime.now(school.world.school.zone).date()


def ask_for_leave(school: LiveSchool, day: date, reason: str, note: str) -> int:
    """The parent asks for a day of leave for their child through the API; the request's id."""
    child = school.parent_child
    assert child is not None
    with httpx.Client(base_url=school.url) as parent:
        login = parent.post(
            "/api/v1/auth/login", json={"username": LiveSchool.PARENT, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        answer = parent.post(
            "/api/v1/leave-requests",
            json={
                "student_id": child.id,
                "starts_on": day.isoformat(),
                "ends_on": day.isoformat(),
                "reason": reason,
                "note": note,
            },
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def stored_leave(school: LiveSchool, leave_id: int) -> LeaveRequest:
    with Session(school.engine) as db:
        leave = db.get(LeaveRequest, leave_id)
    assert leave is not None
    return leave


def audited(school: LiveSchool, action: str, entity_id: int) -> list[AuditLog]:
    with Session(school.engine) as db:
        return list(
            db.exec(
                select(AuditLog).where(
                    AuditLog.action == action, AuditLog.entity_id == str(entity_id)
                )
            )
        )


def marks_of(school: LiveSchool, student_id: int, day: date) -> list[Attendance]:
    with Session(school.engine) as db:
        return list(
            db.exec(
                select(Attendance).where(
                    Attendance.student_id == student_id, Attendance.date == day
                )
            )
        )


def test_a_rejected_leave_request_changes_no_mark(page: Page, school: LiveSchool) -> None:
    tomorrow = today(school) + timedelta(days=1)
    leave_id = ask_for_leave(school, tomorrow, "other", "Đi chơi xa")
    open_roll(page, school)
    page.goto(f"{school.url}/teacher/leave")
    request = page.locator(f"#leave-{leave_id}")
    expect(request).to_contain_text("Chờ duyệt")
    expect(request).to_contain_text("Đi chơi xa")

    request.get_by_role("button", name="Từ chối").click()

    expect(request).to_have_attribute("data-status", "rejected")
    expect(request).to_contain_text("Bị từ chối")
    expect(request.get_by_role("button")).to_have_count(0)
    leave = stored_leave(school, leave_id)
    assert (leave.status, leave.decided_by) == (LeaveStatus.REJECTED, school.world.teacher.id)
    [entry] = audited(school, "leave.rejected", leave_id)
    assert entry.actor_id == school.world.teacher.id
    assert entry.detail["before"]["status"] == "pending"
    assert school.parent_child is not None
    assert marks_of(school, school.parent_child.id, tomorrow) == []


def test_an_approved_leave_excuses_the_day_on_the_live_roll_and_in_the_history(
    page: Page, school: LiveSchool
) -> None:
    child = school.parent_child
    assert child is not None
    day = today(school)
    leave_id = ask_for_leave(school, day, "medical", "Cháu bị sốt")
    open_roll(page, school)
    row = page.locator(f"#student-{child.id}")
    expect(row).to_have_attribute("data-status", "not_yet")
    decisions = page.context.new_page()
    decisions.goto(f"{school.url}/teacher/leave")

    decisions.locator(f"#leave-{leave_id}").get_by_role("button", name="Duyệt").click()

    expect(decisions.locator(f"#leave-{leave_id}")).to_contain_text("Đã duyệt")
    expect(row).to_have_attribute("data-status", "excused")  # live, without a reload
    expect(row.locator(".badge")).to_have_text("Vắng có phép")
    [mark] = marks_of(school, child.id, day)
    assert (mark.status, mark.source) == (AttendanceStatus.EXCUSED, AttendanceSource.LEAVE)
    assert mark.changed_by == school.world.teacher.id
    [entry] = audited(school, "leave.approve", leave_id)
    assert entry.actor_id == school.world.teacher.id
    assert (entry.student_id, entry.detail) == (child.id, {"sessions_excused": 1})

    row.get_by_role("link", name=child.full_name).click()
    expect(page).to_have_url(f"{school.url}/students/{child.id}")
    expect(page.locator("#history-name")).to_have_text(f"{child.full_name} · {child.code}")
    history = page.locator("#history-body tr").filter(has_text=day.strftime("%d/%m/%Y"))
    expect(history).to_have_count(1)
    expect(history.locator(".badge")).to_have_text("Vắng có phép")


def test_the_roll_names_the_gate_a_student_came_through(page: Page, school: LiveSchool) -> None:
    """gate-1 is called "Cổng chính"; gate-2 has no name and shows as its device id."""
    named, unnamed = school.world.students[1], school.world.students[2]
    school.gate_event(named, gate="gate-1")
    school.gate_event(unnamed, gate="gate-2")
    day = today(school)
    school.wait_until(
        lambda: bool(marks_of(school, named.id, day) and marks_of(school, unnamed.id, day)),
        "both arrivals' marks",
    )
    open_roll(page, school)
    expect(page.locator(f"#student-{named.id} .in")).to_have_text(
        re.compile(r"^\d\d:\d\d · Cổng chính$")
    )
    expect(page.locator(f"#student-{unnamed.id} .in")).to_have_text(
        re.compile(r"^\d\d:\d\d · gate-2$")
    )


def expected_report(school: LiveSchool, first: date, last: date) -> list[list[str]]:
    """What the class's report of ``first``–``last`` must say per student (code, name, class,
    present, late, absent, excused), counted from the attendance table."""
    school_class = school.world.school_class
    with Session(school.engine) as db:
        students = db.exec(
            select(Student).where(Student.class_id == school_class.id).order_by(col(Student.code))
        ).all()
        rows = []
        for student in students:
            statuses = db.exec(
                select(Attendance.status).where(
                    Attendance.student_id == student.id,
                    Attendance.date >= first,
                    Attendance.date <= last,
                )
            ).all()
            counts = [statuses.count(status) for status in REPORT_COUNTS]
            rows.append([student.code, student.full_name, school_class.name, *map(str, counts)])
    return rows


def export(page: Page, folder: Path, button: str, first: date, last: date) -> Path:
    """Pick the range in the roll's export form, press ``button``; the file downloaded (saved
    into ``folder`` under the name the server gave it)."""
    form = page.get_by_role("region", name="Xuất báo cáo")
    form.get_by_label("Từ ngày").fill(first.isoformat())
    form.get_by_label("Đến ngày").fill(last.isoformat())
    with page.expect_download() as download:
        form.get_by_role("button", name=button).click()
    name = download.value.suggested_filename
    class_id = page.locator("#roll").get_attribute("data-class-id")
    assert name.startswith(f"attendance-class-{class_id}-{first.isoformat()}-{last.isoformat()}.")
    download.value.save_as(folder / name)
    return folder / name


def test_the_exports_download_the_class_for_a_date_range(
    page: Page, school: LiveSchool, tmp_path: Path
) -> None:
    arriving = school.world.students[1]
    school.gate_event(arriving)
    day = today(school)
    school.wait_until(lambda: bool(marks_of(school, arriving.id, day)), "the arrival's mark")
    open_roll(page, school)

    csv_file = export(page, tmp_path, "Tải CSV", day, day)

    assert csv_file.suffix == ".csv"
    with csv_file.open(encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header[:7] == [
        "Mã học sinh",
        "Họ và tên",
        "Lớp",
        "Có mặt",
        "Đi muộn",
        "Vắng không phép",
        "Vắng có phép",
    ]
    today_rows = expected_report(school, day, day)
    assert [row[:7] for row in rows] == today_rows
    [seen] = [row for row in rows if row[0] == arriving.code]
    assert (seen[3], seen[7]) == ("1", "100.0")

    last_week = (day - timedelta(days=7), day - timedelta(days=1))
    xlsx_file = export(page, tmp_path, "Tải Excel", *last_week)

    assert xlsx_file.suffix == ".xlsx"
    sheet = load_workbook(xlsx_file).active
    assert sheet is not None and sheet.title == "Chuyên cần"
    header, *cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header[0] == "Mã học sinh"
    got = [[str(value) for value in row[:7]] for row in cells]
    assert got == expected_report(school, *last_week)
    assert [row[:3] for row in got] == [row[:3] for row in today_rows]
    assert all(row[7] is None for row in cells)  # nothing to count before today


def test_every_control_of_the_correction_dialog_has_a_label(page: Page, school: LiveSchool) -> None:
    open_roll(page, school)
    student = school.world.students[2]
    page.get_by_role("button", name=f"Sửa điểm danh: {student.full_name}").click()
    dialog = page.get_by_role("dialog", name="Sửa điểm danh")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Trạng thái")).to_be_focused()
    expect(dialog.get_by_role("combobox", name="Trạng thái")).to_be_visible()
    expect(dialog.get_by_role("textbox", name="Lý do")).to_be_visible()
    controls = dialog.locator("input, select, textarea, button")
    expect(controls).to_have_count(4)
    for control in controls.all():
        expect(control).to_have_accessible_name(re.compile(r"\w"))
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_the_roll_fits_a_phone_screen(browser: Browser, school: LiveSchool) -> None:
    context = browser.new_context(viewport=PHONE, locale="vi-VN")
    page = context.new_page()
    open_roll(page, school)
    expect(page.locator("#roll-body tr")).to_have_count(len(school.world.students))
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    context.close()
