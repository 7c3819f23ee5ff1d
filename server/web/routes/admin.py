"""An admin's pages: the dashboard, the school's records (schools, calendars, sessions, classes,
students, guardians, cards), roster import with a preview, face enrollment, gates, and the
delivery and audit logs.

The record pages are one template driven by :class:`Resource`: the API's own request schema
(its JSON Schema) becomes the form, so a field's rules live in one place and the API checks them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlmodel import col, select

from server import roster_import
from server.api.deps import AdminUser, IdPath, SessionDep, audit_read
from server.api.schemas.classes import SchoolClassCreate, StudentCreate
from server.api.schemas.common import MAX_ID
from server.api.schemas.people import CardCreate, GuardianCreate
from server.api.schemas.schools import (
    CalendarDayCreate,
    SchoolCreate,
    SchoolSessionCreate,
    SchoolYearCreate,
    SiteCreate,
    TermCreate,
)
from server.api.uploads import read_upload
from server.core.zones import DEFAULT_TIMEZONE
from server.models import Device, DeviceStatus, School, Student, utc_now
from server.web.dashboard import attendance_rates, rate_chart
from server.web.i18n import language, translator
from server.web.session import AdminPage, DevicesPage
from server.web.templating import render

router = APIRouter()
DASHBOARD_DAYS = 14


@dataclass(frozen=True)
class Resource:
    """One kind of record on a page: where the API keeps it, its create schema, the columns
    shown, and links from each row (``{id}`` is the row's id)."""

    title: str
    endpoint: str
    schema: type[BaseModel]
    columns: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = ()

    def spec(self) -> dict[str, Any]:
        return asdict(self) | {"schema": self.schema.model_json_schema()}


RESOURCE_PAGES: dict[str, tuple[str, tuple[Resource, ...]]] = {
    "schools": (
        "nav.schools",
        (
            Resource(
                "section.schools",
                "/api/v1/schools",
                SchoolCreate,
                ("id", "name", "timezone", "school_weekdays"),
            ),
            Resource("section.sites", "/api/v1/sites", SiteCreate, ("id", "code", "name")),
            Resource(
                "section.years",
                "/api/v1/school-years",
                SchoolYearCreate,
                ("id", "school_id", "name", "starts_on", "ends_on"),
            ),
            Resource(
                "section.terms",
                "/api/v1/terms",
                TermCreate,
                ("id", "school_year_id", "name", "starts_on", "ends_on"),
            ),
            Resource(
                "section.calendar",
                "/api/v1/calendar-days",
                CalendarDayCreate,
                ("id", "school_id", "date", "kind", "name"),
            ),
            Resource(
                "section.sessions",
                "/api/v1/sessions",
                SchoolSessionCreate,
                ("id", "school_id", "code", "name", "start", "late_after", "absent_after", "end"),
            ),
        ),
    ),
    "classes": (
        "nav.classes_admin",
        (
            Resource(
                "nav.classes_admin",
                "/api/v1/classes",
                SchoolClassCreate,
                ("id", "name", "grade", "school_year_id", "homeroom_teacher_id"),
                (("/teacher/classes/{id}", "teacher.open_roll"),),
            ),
        ),
    ),
    "students": (
        "nav.students",
        (
            Resource(
                "nav.students",
                "/api/v1/students",
                StudentCreate,
                ("id", "code", "full_name", "class_id", "date_of_birth", "national_id", "status"),
                (
                    ("/students/{id}", "roll.history"),
                    ("/admin/students/{id}/faces", "enroll.title"),
                ),
            ),
        ),
    ),
    "guardians": (
        "nav.guardians",
        (
            Resource(
                "nav.guardians",
                "/api/v1/guardians",
                GuardianCreate,
                ("id", "full_name", "phone", "email", "zalo_id", "user_id"),
            ),
        ),
    ),
    "cards": (
        "nav.cards",
        (
            Resource(
                "nav.cards",
                "/api/v1/cards",
                CardCreate,
                ("id", "uid", "student_id", "kind", "active"),
            ),
        ),
    ),
}


def _resource_page(name: str, title: str, resources: tuple[Resource, ...]) -> None:
    async def page(request: Request, auth: AdminPage) -> HTMLResponse:
        specs = [resource.spec() for resource in resources]
        return render(request, "admin_resources.html", auth, title=title, resources=specs)

    router.add_api_route(f"/admin/{name}", page, methods=["GET"], name=f"admin_{name}")


for _name, (_title, _resources) in RESOURCE_PAGES.items():
    _resource_page(_name, _title, _resources)


# --- the dashboard --------------------------------------------------------------------------------


@router.get("/admin")
def dashboard(
    request: Request,
    auth: AdminPage,
    db: SessionDep,
    school_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    """Attendance rate by class for the last two weeks (a chart and its table), gates online."""
    schools = list(db.exec(select(School).order_by(col(School.id))))
    school = next((s for s in schools if s.id == school_id), schools[0] if schools else None)
    if school_id is not None and (school is None or school.id != school_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "school not found / không tìm thấy trường")
    t = translator(language(request))
    days, classes, chart = [], [], ""
    if school is not None:
        today = utc_now().astimezone(school.zone).date()
        days = [today - timedelta(days=n) for n in range(DASHBOARD_DAYS - 1, -1, -1)]
        classes = attendance_rates(db, school.id, days)
        chart = rate_chart(classes, days, t("dashboard.chart"), t("dashboard.by_class"))
    devices = list(db.exec(select(Device.status)))
    return render(
        request,
        "admin_dashboard.html",
        auth,
        title="dashboard.title",
        schools=schools,
        school=school,
        days=days,
        classes=classes,
        chart=chart,
        has_data=any(r is not None for c in classes for r in c.rates.values()),
        devices_online=sum(1 for s in devices if s == DeviceStatus.ONLINE),
        devices_total=len(devices),
    )


# --- roster import --------------------------------------------------------------------------------


@router.get("/admin/import")
def import_page(request: Request, auth: AdminPage, db: SessionDep) -> HTMLResponse:
    schools = list(db.exec(select(School).order_by(col(School.id))))
    return render(request, "admin_import.html", auth, title="import.title", schools=schools)


async def _roster_upload(request: Request) -> tuple[int, bytes]:
    upload = await read_upload(request, max_files=1, max_file_bytes=roster_import.MAX_FILE_BYTES)
    files = upload.files.get("file") or []
    raw_school = upload.fields.get("school_id", "")
    if not files or not raw_school.isdigit() or not 1 <= int(raw_school) <= MAX_ID:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "cần school_id và một tệp 'file' / school_id and one 'file' are required",
        )
    return int(raw_school), files[0]


def _preview_json(found: roster_import.RosterPreview) -> dict[str, Any]:
    return {
        "ok": found.ok,
        "bad_rows": found.bad_rows,
        "rows": [asdict(row) for row in found.rows],
    }


def _school_or_404(db: SessionDep, school_id: int) -> None:
    if db.get(School, school_id) is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"school {school_id} not found / không tìm thấy trường"
        )


def _unreadable(exc: roster_import.RosterFileError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


@router.post("/web/api/roster/preview")
async def roster_preview(request: Request, _admin: AdminUser, db: SessionDep) -> dict[str, Any]:
    """Every row of the uploaded roster with its problems; nothing is saved."""
    school_id, data = await _roster_upload(request)
    _school_or_404(db, school_id)
    try:
        return _preview_json(roster_import.preview(db, school_id, data))
    except roster_import.RosterFileError as exc:
        raise _unreadable(exc) from None


@router.post("/web/api/roster/import", status_code=status.HTTP_201_CREATED)
async def roster_save(request: Request, admin: AdminUser, db: SessionDep) -> JSONResponse:
    """Save every row of the roster, or nothing (422 with the preview) if any row is wrong."""
    db.rollback()  # no transaction (nor SQLite's write lock) stays open while the file arrives
    school_id, data = await _roster_upload(request)
    _school_or_404(db, school_id)
    try:
        saved = roster_import.save(db, school_id, data, admin.id)
    except roster_import.RosterFileError as exc:
        raise _unreadable(exc) from None
    except roster_import.RosterRejected as exc:
        db.rollback()
        return JSONResponse(
            {"detail": str(exc), "preview": _preview_json(exc.preview)},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    db.commit()
    return JSONResponse(asdict(saved), status_code=status.HTTP_201_CREATED)


# --- enrollment, gates, logs ----------------------------------------------------------------------


@router.get("/admin/students/{student_id}/faces")
def enrollment_page(
    student_id: IdPath, request: Request, auth: AdminPage, db: SessionDep
) -> HTMLResponse:
    """Upload a student's photos under a recorded consent; see which were refused and why."""
    student = db.get(Student, student_id)
    if student is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"student {student_id} not found / không tìm thấy"
        )
    audit_read(db, auth.user, student_id, "face enrollment page", request=request)
    return render(request, "admin_enroll.html", auth, title="enroll.title", student=student)


def _zone(db: SessionDep) -> str:
    """The zone the logs' times are shown in: the (first) school's."""
    return db.exec(select(School.timezone).order_by(col(School.id))).first() or DEFAULT_TIMEZONE


@router.get("/admin/devices")
def devices_page(request: Request, auth: DevicesPage, db: SessionDep) -> HTMLResponse:
    """Gates: online or not, last seen, frame rate, outbox depth, versions."""
    return render(request, "admin_devices.html", auth, title="devices.title", zone=_zone(db))


@router.get("/admin/deliveries")
def deliveries_page(request: Request, auth: AdminPage, db: SessionDep) -> HTMLResponse:
    return render(request, "admin_deliveries.html", auth, title="deliveries.title", zone=_zone(db))


@router.get("/admin/audit")
def audit_page(request: Request, auth: AdminPage, db: SessionDep) -> HTMLResponse:
    return render(request, "admin_audit.html", auth, title="audit.title", zone=_zone(db))
