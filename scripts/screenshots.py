#!/usr/bin/env python3
"""Take the README's screenshots of the web app: the teacher's live roll on a phone (360×800)
and a desktop (1280×800), the parent's page and the admin dashboard, into docs/screenshots/.

It runs the same whole system as the browser tests (:mod:`tests.web.harness`: Mosquitto,
``campusgate server run``, a fresh SQLite database), adds two weeks of attendance and a fuller
class, sends today's arrivals through the broker like gates do, and drives Debian's Chromium.

    .venv/bin/python scripts/screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import random
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.attendance import set_status_manually  # noqa: E402
from server.db import writer  # noqa: E402
from server.models import (  # noqa: E402
    Attendance,
    AttendanceSource,
    AttendanceStatus,
    SchoolClass,
    Student,
    utc_now,
)
from tests.web.harness import CHROMIUM, PASSWORD, LiveSchool  # noqa: E402

NAMES_10A1 = (
    "Bùi Ngọc Anh",
    "Đặng Quốc Bảo",
    "Hoàng Thị Giang",
    "Lý Gia Hân",
    "Ngô Đức Huy",
    "Phan Minh Khôi",
    "Trịnh Thảo My",
    "Võ Thành Nam",
    "Dương Khánh Vy",
)
NAMES_10A2 = ("Mai Văn Tùng", "Tạ Thu Hà", "Lâm Bảo Ngọc", "Cao Minh Trí", "Đinh Thị Yến")
PAST_DAYS = 13


def add_students(db: Session, school: LiveSchool) -> list[Student]:
    """More students in 10A1, and a class 10A2, so the roll and chart look like a school's."""
    world = school.world
    other = SchoolClass(
        school_id=world.school.id, school_year_id=world.year.id, name="10A2", grade=10
    )
    db.add(other)
    db.flush()
    added = []
    for n, name in enumerate(NAMES_10A1, start=4):
        added.append(
            Student(
                code=f"HS{n}",
                full_name=name,
                school_id=world.school.id,
                class_id=world.school_class.id,
            )
        )
    for n, name in enumerate(NAMES_10A2, start=20):
        added.append(
            Student(code=f"HS{n}", full_name=name, school_id=world.school.id, class_id=other.id)
        )
    db.add_all(added)
    db.commit()
    return added


def add_history(db: Session, school: LiveSchool, students: list[Student]) -> None:
    """Marks for the last two weeks (a fixed seed: the same pictures every run)."""
    rnd = random.Random(8)
    today = utc_now().astimezone(school.world.school.zone).date()
    statuses = [AttendanceStatus.PRESENT] * 14 + [
        AttendanceStatus.LATE,
        AttendanceStatus.ABSENT,
        AttendanceStatus.EXCUSED,
    ]
    for back in range(PAST_DAYS, 0, -1):
        day = today - timedelta(days=back)
        if day.isoweekday() > 5:
            continue
        for student in students:
            db.add(
                Attendance(
                    student_id=student.id,
                    date=day,
                    session_id=school.world.morning.id,
                    status=rnd.choice(statuses),
                    source=AttendanceSource.GATE,
                )
            )
    db.commit()


def shoot(page: Page, path: Path) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=False)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def sign_in(page: Page, school: LiveSchool, username: str) -> None:
    page.goto(f"{school.url}/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(lambda url: "/login" not in url)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cg-screens-") as tmp:
        school = LiveSchool.create(Path(tmp))
        try:
            with Session(school.engine, expire_on_commit=False) as db:
                extra = add_students(db, school)
                everyone = list(db.exec(select(Student)))
                add_history(db, school, everyone)
            school.start()
            world = school.world
            in_class = world.students + extra[: len(NAMES_10A1)]
            for n, student in enumerate(in_class):
                if n % 4 != 3:
                    school.gate_event(student, gate="gate-1" if n % 2 else "gate-2")
            school.gate_event(world.students[0], gate="gate-2", direction="out")
            with Session(writer(school.engine)) as db:
                set_status_manually(
                    db,
                    student_id=in_class[3].id,
                    day=utc_now().astimezone(world.school.zone).date(),
                    session_id=world.morning.id,
                    status=AttendanceStatus.EXCUSED,
                    user_id=world.teacher.id,
                    note="Mẹ gọi điện báo con bị sốt",
                )
                db.commit()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
                )
                for name, size in (("phone", (360, 800)), ("desktop", (1280, 800))):
                    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                    sign_in(page, school, LiveSchool.TEACHER)
                    page.goto(f"{school.url}/teacher/classes/{world.school_class.id}")
                    page.locator("#live.on").wait_for()
                    page.locator('tr[data-status="present"]').first.wait_for()
                    shoot(page, out / f"teacher-roll-{name}.png")
                    page.close()
                page = browser.new_page(viewport={"width": 360, "height": 800})
                sign_in(page, school, LiveSchool.PARENT)
                page.locator(".today li").first.wait_for()
                shoot(page, out / "parent.png")
                page.close()
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                sign_in(page, school, LiveSchool.ADMIN)
                page.goto(f"{school.url}/admin")
                shoot(page, out / "admin-dashboard.png")
                browser.close()
        finally:
            school.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
