"""Importing a school's roster (students, and each one's guardian) from a CSV or XLSX file: a
preview that lists every row's problems, and an all-or-nothing save.

Each row is judged by the same pydantic models the API uses (:data:`StudentCreate`,
:data:`GuardianCreate`), plus what only the database knows: the class exists at the school, the
student code and national ID number are not taken (in the file or already). :func:`save`
re-checks everything and writes nothing unless every row is valid, in the caller's transaction,
with an audit entry per student.

Columns (a header row, in any order; unknown columns are ignored): ``code``, ``full_name``
(required), ``class``, ``date_of_birth``, ``enrolled_on`` (``YYYY-MM-DD`` or ``DD/MM/YYYY``),
``national_id`` (the 12-digit số định danh cá nhân on the student's CCCD; in Excel, a text
cell, since a number loses the leading zeros), ``guardian_name``, ``guardian_phone``,
``guardian_email``, ``relationship`` (mother, father, grandparent, sibling, guardian, other).
Guardians with the same phone — siblings' parents, or a guardian already on record — become one
guardian linked to each child.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, col, select

from server import audit
from server.api.schemas.classes import StudentCreate
from server.api.schemas.people import GuardianCreate
from server.models import (
    Guardian,
    GuardianRelationship,
    SchoolClass,
    SchoolYear,
    Student,
    StudentGuardian,
)

MAX_ROWS = 5000
MAX_FILE_BYTES = 5 * 2**20
COLUMNS = (
    "code",
    "full_name",
    "class",
    "date_of_birth",
    "enrolled_on",
    "national_id",
    "guardian_name",
    "guardian_phone",
    "guardian_email",
    "relationship",
)
REQUIRED_COLUMNS = ("code", "full_name")
# Columns no two students may share, and how a message names a value of each (Vietnamese, English).
UNIQUE_COLUMNS = {"code": ("mã", "code"), "national_id": ("số định danh", "national ID")}
GUARDIAN_COLUMNS = ("guardian_name", "guardian_phone", "guardian_email", "relationship")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")

# Vietnamese for the pydantic error types a roster row can hit; the English is pydantic's own.
_VI_ERRORS = {
    "missing": "bắt buộc",
    "string_too_short": "không được để trống",
    "string_too_long": "quá dài",
    "string_pattern_mismatch": "sai định dạng",
    "date_from_datetime_parsing": "ngày không hợp lệ (YYYY-MM-DD hoặc DD/MM/YYYY)",
    "date_parsing": "ngày không hợp lệ (YYYY-MM-DD hoặc DD/MM/YYYY)",
    "enum": "giá trị không hợp lệ",
}


class RosterFileError(ValueError):
    """The file as a whole cannot be read as a roster (its message is Vietnamese / English)."""


@dataclass
class RosterRow:
    """One data row: its line in the file (the header is line 1), its cells, its problems."""

    line: int
    values: dict[str, str]
    errors: list[str] = field(default_factory=list)


@dataclass
class RosterPreview:
    """Every row of the file with its problems; ``ok`` when all rows may be saved."""

    rows: list[RosterRow]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not any(row.errors for row in self.rows)

    @property
    def bad_rows(self) -> int:
        return sum(1 for row in self.rows if row.errors)


@dataclass(frozen=True)
class RosterSaved:
    students: int
    guardians_created: int
    links: int


# --- reading the file -----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone or code typed as a number in Excel
    return str(value).strip()


def _xlsx_rows(data: bytes) -> list[list[str]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterFileError(f"không đọc được tệp Excel / unreadable XLSX file ({exc})") from None
    try:
        sheet = book.worksheets[0]
        return [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _csv_rows(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterFileError(
            "tệp CSV phải mã hóa UTF-8 / the CSV file must be UTF-8 encoded"
        ) from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return [
        [cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)
    ]


def read_roster(data: bytes) -> list[RosterRow]:
    """The data rows of a CSV (UTF-8, comma or semicolon) or XLSX (first sheet) roster, told
    apart by content; blank rows are skipped. RosterFileError if it is not a usable roster."""
    if not data.strip():
        raise RosterFileError("tệp rỗng / the file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise RosterFileError(
            f"tệp quá {MAX_FILE_BYTES // 2**20} MB / file over {MAX_FILE_BYTES // 2**20} MB"
        )
    table = _xlsx_rows(data) if data.startswith(b"PK\x03\x04") else _csv_rows(data)
    if not table:
        raise RosterFileError("tệp rỗng / the file is empty")
    header = [name.strip().lower() for name in table[0]]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        names = ", ".join(missing)
        raise RosterFileError(f"thiếu cột {names} / missing column(s) {names}")
    rows = []
    for line, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue
        values = {
            name: cells[i] if i < len(cells) else ""
            for i, name in enumerate(header)
            if name in COLUMNS
        }
        rows.append(RosterRow(line, values))
    if not rows:
        raise RosterFileError("tệp không có dòng dữ liệu / the file has no data rows")
    if len(rows) > MAX_ROWS:
        raise RosterFileError(f"quá {MAX_ROWS} dòng / more than {MAX_ROWS} rows")
    return rows


# --- judging the rows -----------------------------------------------------------------------------


def _date(text: str) -> str | None:
    """ISO dates as they are; DD/MM/YYYY (how Vietnamese write dates) turned into ISO."""
    if not text:
        return None
    match = _DMY.match(text)
    return f"{match[3]}-{int(match[2]):02d}-{int(match[1]):02d}" if match else text


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    out = []
    for error in exc.errors():
        where = prefix + ".".join(str(part) for part in error["loc"]) or "row"
        vi = _VI_ERRORS.get(error["type"], "không hợp lệ")
        out.append(f"{where}: {vi} / {error['msg']}")
    return out


def _class_ids(db: Session, school_id: int) -> dict[str, int]:
    """Class name -> id at the school; a name used in several years means the newest year's."""
    found = db.exec(
        select(SchoolClass.name, SchoolClass.id)
        .join(SchoolYear, col(SchoolYear.id) == SchoolClass.school_year_id)
        .where(SchoolClass.school_id == school_id)
        .order_by(col(SchoolYear.starts_on))
    )
    return {name.casefold(): class_id for name, class_id in found}


@dataclass
class _Judged:
    preview: RosterPreview
    students: dict[int, BaseModel]
    guardians: dict[int, tuple[BaseModel, GuardianRelationship]]


def _check_unique(db: Session, rows: list[RosterRow], column: str) -> None:
    """Name, on each row, a value of a :data:`UNIQUE_COLUMNS` column that an earlier row of the
    file or a student on record already has; empty cells are left to the model's rules."""
    vi, en = UNIQUE_COLUMNS[column]
    field = getattr(Student, column)
    values = {value for row in rows if (value := row.values.get(column, ""))}
    taken = set(db.exec(select(field).where(col(field).in_(values))))
    seen: dict[str, int] = {}
    for row in rows:
        value = row.values.get(column, "")
        if not value:
            continue
        if value in seen:
            line = seen[value]
            row.errors.append(f"{column}: trùng {vi} với dòng {line} / same {en} as line {line}")
        elif value in taken:
            row.errors.append(
                f"{column}: đã có học sinh {vi} {value} / a student with {en} {value} exists"
            )
        seen.setdefault(value, row.line)


def _judge(db: Session, school_id: int, rows: list[RosterRow]) -> _Judged:
    classes = _class_ids(db, school_id)
    for column in UNIQUE_COLUMNS:
        _check_unique(db, rows, column)
    students: dict[int, BaseModel] = {}
    guardians: dict[int, tuple[BaseModel, GuardianRelationship]] = {}
    for row in rows:
        values = row.values
        class_name = values.get("class", "")
        class_id = classes.get(class_name.casefold()) if class_name else None
        if class_name and class_id is None:
            row.errors.append(f"class: không có lớp {class_name} / no class {class_name}")
        try:
            students[row.line] = StudentCreate.model_validate(
                {
                    "code": values.get("code", ""),
                    "full_name": values.get("full_name", ""),
                    "date_of_birth": _date(values.get("date_of_birth", "")),
                    "enrolled_on": _date(values.get("enrolled_on", "")),
                    "national_id": values.get("national_id") or None,
                    "school_id": school_id,
                    "class_id": class_id,
                }
            )
        except ValidationError as exc:
            row.errors.extend(_problems(exc))
        if any(values.get(name) for name in GUARDIAN_COLUMNS):
            try:
                guardian = GuardianCreate.model_validate(
                    {
                        "full_name": values.get("guardian_name", ""),
                        "phone": values.get("guardian_phone") or None,
                        "email": values.get("guardian_email") or None,
                    }
                )
                relationship = GuardianRelationship(values.get("relationship") or "guardian")
                guardians[row.line] = (guardian, relationship)
            except ValidationError as exc:
                row.errors.extend(_problems(exc, "guardian_"))
            except ValueError:
                allowed = ", ".join(GuardianRelationship)
                row.errors.append(
                    f"relationship: phải là một trong {allowed} / must be one of {allowed}"
                )
    return _Judged(RosterPreview(rows), students, guardians)


def preview(db: Session, school_id: int, data: bytes) -> RosterPreview:
    """Every row of the file with what is wrong with it; the database is only read."""
    return _judge(db, school_id, read_roster(data)).preview


def save(db: Session, school_id: int, data: bytes, actor_id: int | None) -> RosterSaved:
    """Add every row's student and guardian in ``db``'s transaction (not committed), or raise
    RosterRejected with the preview if any row has a problem: all or nothing."""
    judged = _judge(db, school_id, read_roster(data))
    if not judged.preview.ok:
        raise RosterRejected(judged.preview)
    by_phone: dict[str, Guardian] = {}
    phones = [g.phone for g, _ in judged.guardians.values() if g.phone]  # type: ignore[attr-defined]
    for guardian in db.exec(select(Guardian).where(col(Guardian.phone).in_(phones))):
        by_phone.setdefault(guardian.phone or "", guardian)
    created = links = 0
    for line, body in judged.students.items():
        student = Student(**body.model_dump())
        db.add(student)
        db.flush()
        audit.record(
            db,
            actor_id=actor_id,
            action="student.import",
            entity="student",
            entity_id=student.id,
            student_id=student.id,
            detail={"line": line, "code": student.code},
        )
        if line not in judged.guardians:
            continue
        data_in, relationship = judged.guardians[line]
        phone = data_in.phone  # type: ignore[attr-defined]
        guardian = by_phone.get(phone) if phone else None
        if guardian is None:
            guardian = Guardian(**data_in.model_dump())
            db.add(guardian)
            db.flush()
            created += 1
            if phone:
                by_phone[phone] = guardian
        db.add(
            StudentGuardian(
                student_id=student.id,
                guardian_id=guardian.id,
                relationship=relationship,
                is_primary=True,
            )
        )
        links += 1
    db.flush()
    return RosterSaved(len(judged.students), created, links)


class RosterRejected(ValueError):
    """Nothing was saved: at least one row has a problem (see ``preview``)."""

    def __init__(self, preview: RosterPreview) -> None:
        super().__init__(
            f"{preview.bad_rows} dòng có lỗi, chưa lưu gì / "
            f"{preview.bad_rows} row(s) with errors, nothing saved"
        )
        self.preview = preview
