"""Classes: admins manage them; a teacher sees the classes they are homeroom teacher of."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlmodel import Session, col, select

from server.api import crud
from server.api.deps import (
    AdminUser,
    IdPath,
    Offset,
    OptionalLimit,
    SessionDep,
    StaffUser,
    audit_read,
    class_or_404,
)
from server.api.schemas.classes import (
    SchoolClassCreate,
    SchoolClassPublic,
    SchoolClassUpdate,
    StudentPublic,
)
from server.api.schemas.common import MAX_ID
from server.models import Role, SchoolClass, SchoolYear, Student, User

router = APIRouter(prefix="/classes", tags=["classes"])
DUPLICATE = "the year has a class of this name / lớp đã tồn tại trong năm học"
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _check(db: Session, school_class: SchoolClass) -> None:
    """422 unless the year is the class's school's and the homeroom teacher is a teacher."""
    year = db.get(SchoolYear, school_class.school_year_id)
    if year is not None and year.school_id != school_class.school_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "school_year_id: a year of another school / năm học của trường khác",
        )
    if school_class.homeroom_teacher_id is not None:
        teacher = db.get(User, school_class.homeroom_teacher_id)
        if teacher is not None and teacher.role != Role.TEACHER:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "homeroom_teacher_id: not a teacher / không phải giáo viên",
            )


@router.get("")
def list_classes(
    user: StaffUser,
    db: SessionDep,
    school_id: OptionalId = None,
    school_year_id: OptionalId = None,
    limit: OptionalLimit = None,
    offset: Offset = 0,
) -> list[SchoolClassPublic]:
    """All classes for an admin; a teacher's own homeroom classes."""
    statement = select(SchoolClass).order_by(col(SchoolClass.name))
    if user.role == Role.TEACHER:
        statement = statement.where(SchoolClass.homeroom_teacher_id == user.id)
    if school_id is not None:
        statement = statement.where(SchoolClass.school_id == school_id)
    if school_year_id is not None:
        statement = statement.where(SchoolClass.school_year_id == school_year_id)
    return list(db.exec(statement.order_by(col(SchoolClass.id)).offset(offset).limit(limit)))


@router.post("", status_code=status.HTTP_201_CREATED)
def create_class(body: SchoolClassCreate, _admin: AdminUser, db: SessionDep) -> SchoolClassPublic:
    school_class = SchoolClass(**body.model_dump())
    crud.check_references(db, SchoolClass, body.model_dump())
    _check(db, school_class)
    crud.store(db, school_class, DUPLICATE)
    db.commit()
    return school_class


@router.get("/{class_id}")
def get_class(class_id: IdPath, user: StaffUser, db: SessionDep) -> SchoolClassPublic:
    return class_or_404(db, user, class_id)


@router.patch("/{class_id}")
def update_class(
    class_id: IdPath, body: SchoolClassUpdate, _admin: AdminUser, db: SessionDep
) -> SchoolClassPublic:
    school_class = crud.get_or_404(db, SchoolClass, class_id, "class")
    crud.patch(db, school_class, SchoolClassCreate, body, DUPLICATE)
    _check(db, school_class)
    db.commit()
    return school_class


@router.delete("/{class_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_class(class_id: IdPath, _admin: AdminUser, db: SessionDep) -> None:
    """Delete a class; its students stay, without a class."""
    db.delete(crud.get_or_404(db, SchoolClass, class_id, "class"))
    db.commit()


@router.get("/{class_id}/students")
def class_students(
    class_id: IdPath, user: StaffUser, db: SessionDep, request: Request
) -> list[StudentPublic]:
    """The students of a class, by code (audited)."""
    class_or_404(db, user, class_id)
    students = list(
        db.exec(select(Student).where(Student.class_id == class_id).order_by(col(Student.code)))
    )
    audit_read(db, user, [s.id for s in students], "class list", request=request)
    return students
