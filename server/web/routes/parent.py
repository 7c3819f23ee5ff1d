"""A parent's page: their children's arrivals and departures, notifications in this browser and
how they want to hear from the school, and leave requests. The children's data comes from the
API (which checks and audits every read); this page only lays it out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from server.api.deps import SessionDep
from server.core.zones import DEFAULT_TIMEZONE
from server.models import Guardian, LeaveReason, School, Student, StudentGuardian, utc_now
from server.web.session import ParentPage
from server.web.templating import render

router = APIRouter()


@router.get("/parent")
def parent_page(request: Request, auth: ParentPage, db: SessionDep) -> HTMLResponse:
    """Today and this month are the school's (the first child's school's clock)."""
    school = db.exec(
        select(School)
        .join(Student, col(Student.school_id) == School.id)
        .join(StudentGuardian, col(StudentGuardian.student_id) == Student.id)
        .join(Guardian, col(Guardian.id) == StudentGuardian.guardian_id)
        .where(Guardian.user_id == auth.user.id)
    ).first()
    zone = school.timezone if school else DEFAULT_TIMEZONE
    today = utc_now().astimezone(school.zone).date() if school else utc_now().date()
    return render(
        request,
        "parent.html",
        auth,
        title="parent.title",
        leave_reasons=list(LeaveReason),
        today=today,
        zone=zone,
    )
