"""A homeroom teacher's pages (admins may open them too): their classes, a class's live roll
with corrections, leave requests to decide, a student's history; and the roll's event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import Engine
from sqlmodel import col, select

from server.api.deps import IdPath, SessionDep, audit_read, class_or_404, get_engine
from server.attendance import Calendar
from server.models import Role, School, SchoolClass
from server.web.live_roll import roll_json, roll_stream, school_today
from server.web.roll_watch import Interest, class_day_signature, roll_watcher
from server.web.session import PageAuth, StaffPage
from server.web.templating import render

router = APIRouter()


@router.get("/teacher")
def classes_page(request: Request, auth: StaffPage, db: SessionDep) -> HTMLResponse:
    """The teacher's homeroom classes (every class for an admin)."""
    statement = select(SchoolClass).order_by(col(SchoolClass.name))
    if auth.user.role == Role.TEACHER:
        statement = statement.where(SchoolClass.homeroom_teacher_id == auth.user.id)
    classes = list(db.exec(statement))
    return render(request, "teacher_classes.html", auth, title="teacher.title", classes=classes)


@router.get("/teacher/classes/{class_id}")
def roll_page(class_id: IdPath, request: Request, auth: StaffPage, db: SessionDep) -> HTMLResponse:
    """The class's live roll; the data itself comes over the stream below."""
    school_class = class_or_404(db, auth.user, class_id)
    school = db.get(School, school_class.school_id)
    assert school is not None
    sessions = Calendar(db).sessions(school.id)
    return render(
        request,
        "roll.html",
        auth,
        title="roll.title",
        school_class=school_class,
        school=school,
        sessions=sessions,
        today=school_today(db, school_class),
    )


async def watched_class(
    class_id: IdPath, engine: Annotated[Engine, Depends(get_engine)]
) -> AsyncIterator[Interest]:
    """The roll stream's registration with the process's watcher of the database. It is made
    before the route reads the first roll, so that a change committed meanwhile still wakes the
    stream, and dropped once the response has ended."""
    with roll_watcher(engine).watch(class_id) as interest:
        yield interest


@router.get("/web/api/classes/{class_id}/roll/stream")
def roll_events(
    class_id: IdPath,
    request: Request,
    auth: StaffPage,
    db: SessionDep,
    engine: Annotated[Engine, Depends(get_engine)],
    interest: Annotated[Interest, Depends(watched_class)],
    day: Annotated[date | None, Query(alias="date")] = None,
) -> StreamingResponse:
    """Server-Sent Events of the class's roll (today's unless ``date``): a ``snapshot``, then an
    ``update`` with the changed students whenever a mark changes. Opening it is audited like
    reading the roll."""
    school_class = class_or_404(db, auth.user, class_id)
    first_day = day or school_today(db, school_class)
    # Read before the roll, so that a change in between shows as a moved signature.
    signature = class_day_signature(db, class_id, first_day)
    first = roll_json(db, school_class, first_day)
    audit_read(
        db,
        auth.user,
        [s["student_id"] for s in first["students"]],
        "roll",
        request=request,
        detail={"class_id": class_id, "date": first["date"], "live": True},
    )
    return StreamingResponse(
        roll_stream(engine, interest, school_class, first, signature, day),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/teacher/leave")
def leave_page(request: Request, auth: StaffPage) -> HTMLResponse:
    """Leave requests of the teacher's classes, pending first, to approve or reject."""
    return render(request, "leave.html", auth, title="leave.title")


@router.get("/students/{student_id}")
def student_page(student_id: IdPath, request: Request, auth: PageAuth) -> HTMLResponse:
    """A student's attendance history (the API checks who may read it, and audits it)."""
    return render(request, "history.html", auth, title="history.title", student_id=student_id)
