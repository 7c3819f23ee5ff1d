"""List, read, create, change and delete routes for the school's reference data (schools, sites,
years, terms, calendar days, sessions) and guardians, which all follow one pattern: everyone but
technicians reads (only admins, for guardians), admins write, a duplicate is 409, and so is a
delete that would take students' records with it.

(No ``from __future__ import annotations`` here: FastAPI reads the generated routes' annotations,
which name this factory's arguments, at run time.)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, create_model
from sqlmodel import SQLModel, col, select

from server.api import crud
from server.api.deps import AdminUser, IdPath, PersonUser, SessionDep
from server.api.schemas.common import MAX_ID

MAX_PAGE = 1000


@dataclass(frozen=True)
class Blocker:
    """Rows of ``model`` whose ``column`` points at the row to delete make the delete a 409."""

    model: type[SQLModel]
    column: str
    message: str


def add_crud_routes(
    router: APIRouter,
    *,
    model: type[SQLModel],
    create: type[SQLModel],
    update: type[BaseModel],
    public: type[BaseModel],
    path: str,
    duplicate: str,
    filters: Sequence[str] = (),
    order_by: Sequence[str] = ("id",),
    blockers: Sequence[Blocker] = (),
    reader: Any = PersonUser,
) -> None:
    """Add ``GET path``, ``POST path``, ``GET/PATCH/DELETE path/{id}`` for ``model`` to
    ``router``; ``filters`` are foreign-key columns the list can be narrowed by; ``reader`` is
    who may read (an ``Annotated`` user dependency; admins always write)."""
    name = model.__name__
    what = model.__tablename__  # type: ignore[attr-defined]
    query_fields: dict[str, Any] = {
        key: (int | None, Field(default=None, ge=1, le=MAX_ID)) for key in filters
    }
    query_fields["limit"] = (int, Field(default=200, ge=1, le=MAX_PAGE))
    query_fields["offset"] = (int, Field(default=0, ge=0, le=MAX_ID))
    Filter = create_model(f"{name}Query", **query_fields)

    @router.get(path, name=f"list_{what}", summary=f"List {what}")
    def list_rows(_user: reader, db: SessionDep, query: Annotated[Filter, Query()]) -> list[public]:
        statement = select(model)
        for key in filters:
            value = getattr(query, key)
            if value is not None:
                statement = statement.where(col(getattr(model, key)) == value)
        statement = statement.order_by(*(col(getattr(model, key)) for key in order_by))
        return list(db.exec(statement.offset(query.offset).limit(query.limit)))

    @router.post(
        path, name=f"create_{what}", summary=f"Create a {what}", status_code=status.HTTP_201_CREATED
    )
    def create_row(body: create, _user: AdminUser, db: SessionDep) -> public:
        row = crud.create(db, model, body, duplicate)
        db.commit()
        return row

    @router.get(f"{path}/{{row_id}}", name=f"get_{what}", summary=f"Get a {what}")
    def get_row(row_id: IdPath, _user: reader, db: SessionDep) -> public:
        return crud.get_or_404(db, model, row_id)

    @router.patch(f"{path}/{{row_id}}", name=f"update_{what}", summary=f"Change a {what}")
    def update_row(
        row_id: IdPath,
        body: update,
        _user: AdminUser,
        db: SessionDep,
    ) -> public:
        row = crud.get_or_404(db, model, row_id)
        crud.patch(db, row, create, body, duplicate)
        db.commit()
        return row

    @router.delete(
        f"{path}/{{row_id}}",
        name=f"delete_{what}",
        summary=f"Delete a {what}",
        status_code=status.HTTP_204_NO_CONTENT,
    )
    def delete_row(row_id: IdPath, _user: AdminUser, db: SessionDep) -> None:
        row = crud.get_or_404(db, model, row_id)
        for blocker in blockers:
            column = col(getattr(blocker.model, blocker.column))
            if db.exec(select(column).where(column == row_id).limit(1)).first() is not None:
                raise crud.conflict(blocker.message)
        db.delete(row)
        db.commit()
