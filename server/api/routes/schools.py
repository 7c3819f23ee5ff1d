"""Schools, their sites (campuses), school years, terms, calendar exceptions and sessions."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.resource import Blocker, add_crud_routes
from server.api.schemas import schools as s
from server.models import (
    Attendance,
    CalendarDay,
    School,
    SchoolClass,
    SchoolSession,
    SchoolYear,
    Site,
    Student,
    Term,
)

router = APIRouter(tags=["schools"])

add_crud_routes(
    router,
    model=School,
    create=s.SchoolCreate,
    update=s.SchoolUpdate,
    public=s.SchoolPublic,
    path="/schools",
    duplicate="school already exists / trường đã tồn tại",
    blockers=[Blocker(Student, "school_id", "the school has students / trường còn học sinh")],
)
add_crud_routes(
    router,
    model=Site,
    create=s.SiteCreate,
    update=s.SiteUpdate,
    public=s.SitePublic,
    path="/sites",
    duplicate="a site with this code exists / mã cơ sở đã tồn tại",
    filters=["school_id"],
)
add_crud_routes(
    router,
    model=SchoolYear,
    create=s.SchoolYearCreate,
    update=s.SchoolYearUpdate,
    public=s.SchoolYearPublic,
    path="/school-years",
    duplicate="the school has a year of this name / năm học đã tồn tại",
    filters=["school_id"],
    order_by=["starts_on"],
    blockers=[Blocker(SchoolClass, "school_year_id", "the year has classes / năm học còn lớp")],
)
add_crud_routes(
    router,
    model=Term,
    create=s.TermCreate,
    update=s.TermUpdate,
    public=s.TermPublic,
    path="/terms",
    duplicate="term already exists / học kỳ đã tồn tại",
    filters=["school_year_id"],
    order_by=["starts_on"],
)
add_crud_routes(
    router,
    model=CalendarDay,
    create=s.CalendarDayCreate,
    update=s.CalendarDayUpdate,
    public=s.CalendarDayPublic,
    path="/calendar-days",
    duplicate="the school has an entry for this date / ngày này đã có trong lịch",
    filters=["school_id"],
    order_by=["date"],
)
add_crud_routes(
    router,
    model=SchoolSession,
    create=s.SchoolSessionCreate,
    update=s.SchoolSessionUpdate,
    public=s.SchoolSessionPublic,
    path="/sessions",
    duplicate="the school has a session with this code / mã buổi học đã tồn tại",
    filters=["school_id"],
    order_by=["school_id", "start"],
    blockers=[
        Blocker(Attendance, "session_id", "the session has attendance / buổi học đã có điểm danh")
    ],
)
