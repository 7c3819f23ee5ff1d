"""The school dashboard's numbers and chart: the attendance rate of each class on each day, and
the same drawn as an inline SVG line chart (server-side, so no chart library is shipped).

The rate is the reports' (:mod:`server.api.reports`): present and late over present, late,
absent and excused, counted over the sessions that have a mark. Only counts leave the database:
no student is named, so reading them is not a personal-data read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from html import escape

from sqlalchemy import func
from sqlmodel import Session, col, select

from server.models import Attendance, AttendanceStatus, SchoolClass, Student

ATTENDED = (AttendanceStatus.PRESENT, AttendanceStatus.LATE)
PALETTE = ("#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d")


@dataclass(frozen=True)
class ClassRates:
    """One class: its rate (0–100, None without marks) on each day of the range."""

    class_id: int
    name: str
    rates: dict[date, float | None]

    @property
    def overall(self) -> float | None:
        known = [r for r in self.rates.values() if r is not None]
        return sum(known) / len(known) if known else None


def attendance_rates(db: Session, school_id: int, days: list[date]) -> list[ClassRates]:
    """Every class of the school with its rate on each of ``days`` (in order)."""
    classes = db.exec(
        select(SchoolClass.id, SchoolClass.name)
        .where(SchoolClass.school_id == school_id)
        .order_by(col(SchoolClass.name))
    ).all()
    counts: dict[tuple[int, date], list[int]] = {}
    if days:
        rows = db.exec(
            select(Student.class_id, Attendance.date, Attendance.status, func.count())
            .join(Student, col(Student.id) == Attendance.student_id)
            .where(
                Student.school_id == school_id,
                col(Attendance.date) >= days[0],
                col(Attendance.date) <= days[-1],
            )
            .group_by(Student.class_id, Attendance.date, Attendance.status)
        )
        for class_id, day, status, n in rows:
            attended, total = counts.setdefault((class_id, day), [0, 0])
            counts[(class_id, day)] = [attended + n * (status in ATTENDED), total + n]
    result = []
    for class_id, name in classes:
        rates: dict[date, float | None] = {}
        for day in days:
            attended, total = counts.get((class_id, day), (0, 0))
            rates[day] = 100.0 * attended / total if total else None
        result.append(ClassRates(class_id, name, rates))
    return result


def rate_chart(classes: list[ClassRates], days: list[date], title: str, desc: str) -> str:
    """An accessible SVG line chart: one line per class over ``days``, 0–100 %."""
    width, height = 720, 300
    left, right, top, bottom = 44, 16, 16, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(days) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(rate: float) -> float:
        return top + plot_h * (1 - rate / 100)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(desc)}</desc>',
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#d9dde3"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#5a6270">{tick}%</text>'
        )
    for i, day in enumerate(days):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5a6270">{day:%d/%m}</text>'
        )
    for n, school_class in enumerate(classes):
        color = PALETTE[n % len(PALETTE)]
        points = [
            (x(i), y(rate))
            for i, day in enumerate(days)
            if (rate := school_class.rates.get(day)) is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{path}"/>'
            )
        parts.extend(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}"/>' for px, py in points
        )
        lx = left + (n % 6) * 110
        ly = height - 22 + (n // 6) * 14
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" font-size="12" fill="#1b1f24">'
            f"{escape(school_class.name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
