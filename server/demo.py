"""A demo school to try campusgate with: ``campusgate server demo`` (and later ``campusgate up``).

One high school in Vietnam's zone for the school year around today: two terms with the usual
national holidays, a morning and an afternoon session (late one minute after the start, absent
after fifteen, as Vietnamese schools that use face ID do), classes 10A1 to 12A2 with their
homeroom teachers, students with Vietnamese names, a parent for each, student cards, and the
gates at site ``demo``. No face templates: those need photos and a recorded consent. Users have
no password until one is set.

Everything is generated from a fixed seed, so two loads give the same school.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, time, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from server.db import session_scope
from server.models import (
    CalendarDay,
    Card,
    Device,
    Guardian,
    School,
    SchoolClass,
    SchoolSession,
    SchoolYear,
    Site,
    Student,
    StudentGuardian,
    Term,
    User,
)

SITE = "demo"
CLASSES = ("10A1", "10A2", "11A1", "11A2", "12A1", "12A2")
STUDENTS_PER_CLASS = 8
SEED = 2025

FAMILY = (
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
)
MIDDLE = {
    "female": ("Thị", "Ngọc", "Thu", "Thanh", "Bảo", "Khánh", "Minh"),
    "male": ("Văn", "Đức", "Minh", "Quốc", "Gia", "Hữu", "Thành"),
}
GIVEN = {
    "female": (
        "An",
        "Anh",
        "Châu",
        "Giang",
        "Hà",
        "Hạnh",
        "Hoa",
        "Hương",
        "Lan",
        "Linh",
        "Mai",
        "My",
        "Ngân",
        "Nhung",
        "Phương",
        "Quỳnh",
        "Thảo",
        "Trang",
        "Vy",
        "Yến",
    ),
    "male": (
        "Bình",
        "Cường",
        "Dũng",
        "Đạt",
        "Hải",
        "Hiếu",
        "Hùng",
        "Huy",
        "Khoa",
        "Long",
        "Nam",
        "Phúc",
        "Quân",
        "Sơn",
        "Tâm",
        "Thắng",
        "Trung",
        "Tuấn",
        "Việt",
        "Vinh",
    ),
}
TEACHERS = (
    "Nguyễn Thị Lan",
    "Trần Văn Minh",
    "Lê Thị Hồng",
    "Phạm Quốc Hùng",
    "Hoàng Thị Mai",
    "Vũ Đức Thắng",
)

# Mùng 1 Tết (lunar new year) by year: the school breaks from three days before to four after.
TET = {
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
}
FIXED_HOLIDAYS = (
    ((1, 1), "Tết Dương lịch"),
    ((4, 30), "Ngày Giải phóng miền Nam"),
    ((5, 1), "Ngày Quốc tế Lao động"),
)


class DemoError(RuntimeError):
    """The demo cannot be loaded (it already is, or would clash with existing data)."""


@dataclass(frozen=True)
class DemoSummary:
    """What was loaded."""

    school_id: int
    school_year: str
    classes: int
    students: int
    guardians: int
    devices: int


def school_year_around(today: date) -> tuple[date, date]:
    """The Vietnamese school year holding ``today`` (5 September to 31 May), or the coming one
    during the summer break."""
    first = today.year if today.month >= 6 else today.year - 1
    return date(first, 9, 5), date(first + 1, 5, 31)


def _name(rnd: random.Random, family: str | None = None) -> tuple[str, str]:
    gender = rnd.choice(("female", "male"))
    parts = (family or rnd.choice(FAMILY), rnd.choice(MIDDLE[gender]), rnd.choice(GIVEN[gender]))
    return unicodedata.normalize("NFC", " ".join(parts)), gender


def _holidays(school_id: int, starts: date, ends: date) -> list[CalendarDay]:
    days: dict[date, str] = {}
    for year in range(starts.year, ends.year + 1):
        for (month, day), name in FIXED_HOLIDAYS:
            days[date(year, month, day)] = name
        if year in TET:
            for offset in range(-3, 5):
                days[TET[year] + timedelta(days=offset)] = "Nghỉ Tết Nguyên Đán"
    return [
        CalendarDay(school_id=school_id, date=day, kind="holiday", name=name)
        for day, name in sorted(days.items())
        if starts <= day <= ends
    ]


def load_demo(engine: Engine, today: date, timezone: str) -> DemoSummary:
    """Load the demo school in one transaction; DemoError if site ``demo`` already exists."""
    with session_scope(engine, write=True) as db:
        if db.exec(select(Site).where(Site.code == SITE)).first() is not None:
            raise DemoError(f"the demo school is already loaded (site {SITE!r} exists)")
        return _load(db, today, timezone)


def _load(db: Session, today: date, timezone: str) -> DemoSummary:
    rnd = random.Random(SEED)
    starts, ends = school_year_around(today)
    school = School(name="Trường THPT Hoa Sen (dữ liệu mẫu)", timezone=timezone)
    db.add(school)
    db.flush()
    year = SchoolYear(
        school_id=school.id, name=f"{starts.year}-{ends.year}", starts_on=starts, ends_on=ends
    )
    site = Site(code=SITE, name="Cơ sở chính", school_id=school.id)
    staff = [
        User(username="admin", full_name="Quản trị hệ thống", role="admin"),
        User(username="kythuat", full_name="Nhân viên kỹ thuật", role="technician"),
    ]
    teachers = [
        User(username=f"gv{n + 1:02d}", full_name=name, role="teacher")
        for n, name in enumerate(TEACHERS)
    ]
    db.add_all([year, site, *staff, *teachers])
    db.flush()
    db.add_all(
        [
            Term(
                school_year_id=year.id,
                name="Học kỳ I",
                starts_on=starts,
                ends_on=date(ends.year, 1, 17),
            ),
            Term(
                school_year_id=year.id,
                name="Học kỳ II",
                starts_on=date(ends.year, 1, 19),
                ends_on=ends,
            ),
            SchoolSession(
                school_id=school.id,
                code="morning",
                name="Buổi sáng",
                start=time(7, 0),
                late_after=time(7, 1),
                absent_after=time(7, 15),
                end=time(11, 30),
            ),
            SchoolSession(
                school_id=school.id,
                code="afternoon",
                name="Buổi chiều",
                start=time(13, 30),
                late_after=time(13, 31),
                absent_after=time(13, 45),
                end=time(17, 0),
            ),
        ]
    )
    db.add_all(_holidays(school.id, starts, ends))
    devices = [
        Device(site_id=site.id, device_id="gate-1", name="Cổng chính - lối vào", direction="in"),
        Device(site_id=site.id, device_id="gate-2", name="Cổng chính - lối ra", direction="out"),
        Device(site_id=site.id, device_id="gate-3", name="Cổng phụ", direction="line"),
    ]
    for device in devices:
        device.credential_id = f"{SITE}.{device.device_id}"
    db.add_all(devices)
    students = 0
    for n, (class_name, teacher) in enumerate(zip(CLASSES, teachers, strict=True)):
        grade = int(class_name[:2])
        school_class = SchoolClass(
            school_id=school.id,
            school_year_id=year.id,
            name=class_name,
            grade=grade,
            homeroom_teacher_id=teacher.id,
        )
        db.add(school_class)
        db.flush()
        for k in range(STUDENTS_PER_CLASS):
            students += 1
            _add_student(db, rnd, school, school_class, starts, n * STUDENTS_PER_CLASS + k + 1)
    return DemoSummary(
        school_id=school.id,
        school_year=year.name,
        classes=len(CLASSES),
        students=students,
        guardians=students,
        devices=len(devices),
    )


def _national_id(gender: str, born: date, number: int) -> str:
    """A made-up personal ID number shaped like a real one: province 001 (Hà Nội), the digit for
    century and sex (0/1 a boy/girl born in the 1900s, 2/3 in the 2000s, …), the year of birth,
    then the student's number as the serial, so no two demo students share one."""
    sex_and_century = 2 * (born.year // 100 - 19) + (1 if gender == "female" else 0)
    return f"001{sex_and_century}{born.year % 100:02d}{number:06d}"


def _add_student(
    db: Session,
    rnd: random.Random,
    school: School,
    school_class: SchoolClass,
    starts: date,
    number: int,
) -> None:
    full_name, gender = _name(rnd)
    born = date(
        starts.year - 15 - (school_class.grade - 10), rnd.randint(1, 12), rnd.randint(1, 28)
    )
    student = Student(
        code=f"HS{starts.year % 100:02d}{number:04d}",
        full_name=full_name,
        date_of_birth=born,
        national_id=_national_id(gender, born, number),
        school_id=school.id,
        class_id=school_class.id,
        enrolled_on=starts,
    )
    parent_name, gender = _name(rnd, family=full_name.split()[0])
    phone = f"09{rnd.randrange(10**8):08d}"
    guardian = Guardian(
        full_name=parent_name,
        phone=phone,
        email=f"phuhuynh{number:04d}@example.vn" if number % 3 == 0 else None,
        zalo_id=phone if number % 2 == 0 else None,
    )
    db.add_all([student, guardian])
    db.flush()
    db.add(
        StudentGuardian(
            student_id=student.id,
            guardian_id=guardian.id,
            relationship="mother" if gender == "female" else "father",
            is_primary=True,
            channel_preferences={
                "push": True,
                "sms": number % 2 == 1,
                "zalo": guardian.zalo_id is not None,
                "email": guardian.email is not None,
            },
        )
    )
    db.add(Card(uid=f"04{rnd.randrange(16**12):012X}", student_id=student.id))
