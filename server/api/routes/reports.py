"""Attendance reports of a class (its teacher or an admin) or a whole school (admin) for a date
range, as CSV or XLSX; ``?lang=en`` for English headers. Audited like any read of students."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlmodel import Session, col, select

from server.api import crud
from server.api.deps import SessionDep, StaffUser, audit_read, class_or_404, forbidden
from server.api.reports import summarise, to_csv, to_xlsx
from server.api.routes.students import date_range
from server.api.schemas.reports import ReportQuery
from server.models import Role, School, Student, User, utc_now

router = APIRouter(prefix="/reports", tags=["reports"])
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
WRITERS = {"csv": to_csv, "xlsx": to_xlsx}


def _report(fmt: str, query: ReportQuery, user: User, db: Session, request: Request) -> Response:
    if (query.class_id is None) == (query.school_id is None):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "give class_id or school_id, not both / chọn lớp hoặc trường",
        )
    if query.class_id is not None:
        school_id = class_or_404(db, user, query.class_id).school_id
        students = col(Student.class_id) == query.class_id
        scope = f"class-{query.class_id}"
    else:
        if user.role != Role.ADMIN:
            raise forbidden("school reports are for admins / chỉ quản trị xem báo cáo toàn trường")
        school_id = query.school_id
        students = col(Student.school_id) == school_id
        scope = f"school-{school_id}"
    school = crud.get_or_404(db, School, school_id, "school")
    today = utc_now().astimezone(school.zone).date()
    starts_on, ends_on = date_range(query.starts_on, query.ends_on, today)
    summaries = summarise(db, students, starts_on, ends_on)
    audit_read(
        db,
        user,
        db.exec(select(Student.id).where(students)).all(),
        "attendance report",
        request=request,
        detail={"scope": scope, "from": starts_on.isoformat(), "to": ends_on.isoformat()},
    )
    filename = f"attendance-{scope}-{starts_on.isoformat()}-{ends_on.isoformat()}.{fmt}"
    return Response(
        WRITERS[fmt](summaries, query.lang),
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


Query_ = Annotated[ReportQuery, Query()]


@router.get(
    "/attendance.csv", response_class=Response, responses={200: {"content": {MEDIA["csv"]: {}}}}
)
def attendance_csv(query: Query_, user: StaffUser, db: SessionDep, request: Request) -> Response:
    """Per-student attendance summary as CSV (UTF-8 with BOM)."""
    return _report("csv", query, user, db, request)


@router.get(
    "/attendance.xlsx", response_class=Response, responses={200: {"content": {MEDIA["xlsx"]: {}}}}
)
def attendance_xlsx(query: Query_, user: StaffUser, db: SessionDep, request: Request) -> Response:
    """Per-student attendance summary as an Excel workbook."""
    return _report("xlsx", query, user, db, request)
