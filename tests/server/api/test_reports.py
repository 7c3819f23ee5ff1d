"""Attendance reports: the CSV and the XLSX, parsed back, hold the right numbers."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from server.models import Attendance, AttendanceSource
from tests.server.api.conftest import Clients, Seed
from tests.server.api.gates import MONDAY

WEEK = [MONDAY + timedelta(days=n) for n in range(5)]
# HS1, morning and afternoon of each day of the week: a run of three absences from Wednesday
# morning to Thursday morning, broken by Thursday afternoon; one excused.
HS1 = [
    ("present", "present"),
    ("late", "present"),
    ("absent", "absent"),
    ("absent", "present"),
    ("excused", "absent"),
]
RANGE = {"from": str(WEEK[0]), "to": str(WEEK[-1])}


@pytest.fixture
def marked(seed: Seed, db: Session) -> Seed:
    world = seed.world
    rows = []
    for day, statuses in zip(WEEK, HS1, strict=True):
        for session, status in zip((world.morning, world.afternoon), statuses, strict=True):
            rows.append((seed.students[0], day, session, status))
    rows.append((seed.students[1], MONDAY, world.morning, "present"))
    rows.append((seed.students[1], WEEK[-1] + timedelta(days=3), world.morning, "absent"))  # out
    rows.append((seed.other_students[0], MONDAY, world.morning, "late"))
    for student, day, session, status in rows:
        db.add(
            Attendance(
                student_id=student.id,
                date=day,
                session_id=session.id,
                status=status,
                source=AttendanceSource.MANUAL,
            )
        )
    db.commit()
    return seed


def test_class_csv_in_vietnamese(clients: Clients, marked: Seed) -> None:
    params = RANGE | {"class_id": marked.world.school_class.id}
    response = clients.teacher.get("/api/v1/reports/attendance.csv", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())  # BOM: Excel reads UTF-8
    header, *rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert header == [
        "Mã học sinh",
        "Họ và tên",
        "Lớp",
        "Có mặt",
        "Đi muộn",
        "Vắng không phép",
        "Vắng có phép",
        "Tỉ lệ chuyên cần (%)",
        "Số buổi vắng liên tiếp dài nhất",
    ]
    assert rows == [
        ["HS1", "Học sinh 1", "10A1", "4", "1", "4", "1", "50.0", "3"],
        ["HS2", "Học sinh 2", "10A1", "1", "0", "0", "0", "100.0", "0"],
        ["HS3", "Học sinh 3", "10A1", "0", "0", "0", "0", "", "0"],
    ]


def test_school_xlsx_in_english(clients: Clients, marked: Seed) -> None:
    params = RANGE | {"school_id": marked.world.school.id, "lang": "en"}
    response = clients.admin.get("/api/v1/reports/attendance.xlsx", params=params)
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).active
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header[:4] == ["Student code", "Full name", "Class", "Present"]
    assert header[-1] == "Longest run of absences (sessions)"
    assert rows == [
        ["HS1", "Học sinh 1", "10A1", 4, 1, 4, 1, 50.0, 3],
        ["HS2", "Học sinh 2", "10A1", 1, 0, 0, 0, 100.0, 0],
        ["HS3", "Học sinh 3", "10A1", 0, 0, 0, 0, None, 0],
        ["HB1", "Học sinh B1", "10A2", 0, 1, 0, 0, 100.0, 0],
        ["HB2", "Học sinh B2", "10A2", 0, 0, 0, 0, None, 0],
    ]


def test_a_report_needs_one_scope_and_a_sane_range(clients: Clients, seed: Seed) -> None:
    url = "/api/v1/reports/attendance.csv"
    both = {"class_id": seed.world.school_class.id, "school_id": seed.world.school.id}
    assert clients.admin.get(url, params=both).status_code == 422
    assert clients.admin.get(url).status_code == 422
    too_long = {
        "class_id": seed.world.school_class.id,
        "from": str(date(2024, 1, 1)),
        "to": str(date(2025, 6, 1)),
    }
    assert clients.admin.get(url, params=too_long).status_code == 422
