"""An admin in the browser: a roster with one bad row is previewed with that row flagged and
cannot be saved (nothing is), the corrected file saves; the dashboard draws its chart and the
gates page lists the gates."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func
from sqlmodel import Session, select

from server.models import Attendance, Guardian, Student
from tests.web.conftest import sign_in
from tests.web.harness import LiveSchool

HEADER = "code,full_name,class,date_of_birth,guardian_name,guardian_phone,relationship\n"
GOOD_ROWS = (
    "HS200,Đỗ Minh Khoa,10A1,2010-03-14,Đỗ Văn Hải,0901234567,father\n"
    "HS201,Vũ Thu Trang,10A1,15/08/2010,Vũ Thị Lan,0907654321,mother\n"
)
BAD_ROW = "HS202,Hồ Gia Huy,10A9,2010-03-01,Hồ Văn Nam,0911111111,mother\n"


@pytest.fixture
def page(browser: Browser, school: LiveSchool) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, school, LiveSchool.ADMIN)
    yield page
    context.close()


def students(school: LiveSchool) -> int:
    with Session(school.engine) as db:
        return db.exec(select(func.count()).select_from(Student)).one()


def marks(school: LiveSchool) -> int:
    with Session(school.engine) as db:
        return db.exec(select(func.count()).select_from(Attendance)).one()


def choose(page: Page, csv: str) -> None:
    page.get_by_label("Tệp danh sách").set_input_files(
        {"name": "danh-sach.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    page.get_by_role("button", name="Xem trước").click()


def test_a_bad_row_is_flagged_in_the_preview_and_nothing_is_saved(
    page: Page, school: LiveSchool
) -> None:
    before = students(school)
    page.goto(f"{school.url}/admin/import")
    choose(page, HEADER + GOOD_ROWS + BAD_ROW)

    bad = page.locator('#import-body tr[data-line="4"]')
    expect(bad).to_have_attribute("data-ok", "false")
    expect(bad).to_contain_text("class: không có lớp 10A9 / no class 10A9")
    expect(page.locator('#import-body tr[data-ok="true"]')).to_have_count(2)
    expect(page.locator("#import-summary")).to_contain_text("Có dòng lỗi")
    expect(page.get_by_role("button", name="Lưu tất cả")).to_be_disabled()
    assert students(school) == before

    choose(page, HEADER + GOOD_ROWS)
    expect(page.locator("#import-summary")).to_have_text("Mọi dòng hợp lệ, có thể lưu.")
    page.get_by_role("button", name="Lưu tất cả").click()
    expect(page.locator("#import-summary")).to_contain_text("Đã lưu: 2")
    assert students(school) == before + 2
    with Session(school.engine) as db:
        phones = set(db.exec(select(Guardian.phone)))
    assert {"0901234567", "0907654321"} <= phones


def test_the_dashboard_charts_attendance_and_lists_the_gates(
    page: Page, school: LiveSchool
) -> None:
    school.gate_event(school.world.students[0])
    school.wait_until(lambda: marks(school) > 0, "the arrival on the attendance table")
    page.goto(f"{school.url}/admin/students")
    expect(page.locator("#resource-sections")).to_contain_text(school.world.students[0].code)

    page.goto(f"{school.url}/admin")
    chart = page.get_by_role("img", name="Biểu đồ tỉ lệ chuyên cần theo ngày")
    expect(chart).to_be_visible()
    expect(page.locator("#rates tbody tr").first).to_contain_text("10A1")

    page.goto(f"{school.url}/admin/devices")
    expect(page.locator('[data-device="school-a.gate-1"]')).to_be_visible()
    expect(page.locator('[data-device="school-a.gate-2"]')).to_be_visible()
