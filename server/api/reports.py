"""Attendance summaries of a class or a school over a date range, as CSV or XLSX.

Per student: sessions present, late, absent (unexcused) and excused; the attendance rate,
(present + late) / all four, blank when there is nothing to count; and the longest run of
consecutive absent sessions, in date and session order (present, late or excused ends a run;
a session with no mark yet neither ends nor extends it). Headers are Vietnamese, or English.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass
from datetime import date
from typing import Literal

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from server.models import Attendance, AttendanceStatus, SchoolClass, SchoolSession, Student

Lang = Literal["vi", "en"]
HEADERS: dict[Lang, tuple[str, ...]] = {
    "vi": (
        "Mã học sinh",
        "Họ và tên",
        "Lớp",
        "Có mặt",
        "Đi muộn",
        "Vắng không phép",
        "Vắng có phép",
        "Tỉ lệ chuyên cần (%)",
        "Số buổi vắng liên tiếp dài nhất",
    ),
    "en": (
        "Student code",
        "Full name",
        "Class",
        "Present",
        "Late",
        "Absent",
        "Excused",
        "Attendance rate (%)",
        "Longest run of absences (sessions)",
    ),
}
SHEET_TITLE: dict[Lang, str] = {"vi": "Chuyên cần", "en": "Attendance"}


@dataclass(slots=True)
class StudentSummary:
    code: str
    full_name: str
    class_name: str
    present: int = 0
    late: int = 0
    absent: int = 0
    excused: int = 0
    rate: float | None = None
    longest_absence_run: int = 0


def summarise(
    db: Session, students: ColumnElement[bool], starts_on: date, ends_on: date
) -> list[StudentSummary]:
    """A summary per student matching ``students`` (a condition on Student), by class and code."""
    found = db.exec(
        select(Student.id, Student.code, Student.full_name, SchoolClass.name)
        .outerjoin(SchoolClass, col(SchoolClass.id) == Student.class_id)
        .where(students)
        .order_by(col(SchoolClass.name), col(Student.code))
    ).all()
    summaries = {
        sid: StudentSummary(code, name, class_name or "") for sid, code, name, class_name in found
    }
    marks = db.exec(
        select(Attendance.student_id, Attendance.status)
        .join(Student, col(Student.id) == Attendance.student_id)
        .join(SchoolSession, col(SchoolSession.id) == Attendance.session_id)
        .where(students, Attendance.date >= starts_on, Attendance.date <= ends_on)
        .order_by(col(Attendance.student_id), col(Attendance.date), col(SchoolSession.start))
    )
    runs: dict[int, int] = {}
    for student_id, status in marks:
        summary = summaries[student_id]
        setattr(summary, status, getattr(summary, status) + 1)
        run = runs.get(student_id, 0) + 1 if status == AttendanceStatus.ABSENT else 0
        runs[student_id] = run
        summary.longest_absence_run = max(summary.longest_absence_run, run)
    for summary in summaries.values():
        counted = summary.present + summary.late + summary.absent + summary.excused
        if counted:
            summary.rate = round(100 * (summary.present + summary.late) / counted, 1)
    return list(summaries.values())


def to_csv(summaries: list[StudentSummary], lang: Lang) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel shows the diacritics."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS[lang])
    for summary in summaries:
        writer.writerow(["" if value is None else value for value in astuple(summary)])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(summaries: list[StudentSummary], lang: Lang) -> bytes:
    """One sheet, bold frozen header row, numbers as numbers."""
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET_TITLE[lang]
    sheet.append(HEADERS[lang])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for summary in summaries:
        sheet.append(astuple(summary))
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCDEFGHI", (14, 28, 8, 10, 10, 16, 14, 20, 30), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
