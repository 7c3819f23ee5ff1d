"""Create, read, update and delete rows the same way in every route: unknown ids are 404, a
referenced row that does not exist is 404 naming it, a duplicate is 409 with the route's message,
and a change that breaks a model's rule is 422."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from server.api.deps import not_found

T = TypeVar("T", bound=SQLModel)


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


def get_or_404(db: Session, model: type[T], row_id: Any, what: str | None = None) -> T:
    """The row of ``model`` with primary key ``row_id``, or 404."""
    row = db.get(model, row_id)
    if row is None:
        raise not_found(what or model.__tablename__, row_id)  # type: ignore[attr-defined]
    return row


@cache
def _model_of_table(table: str) -> type[SQLModel]:
    for mapper in SQLModel._sa_registry.mappers:  # type: ignore[attr-defined]
        if mapper.local_table.name == table:
            return mapper.class_
    raise LookupError(table)


def check_references(db: Session, model: type[SQLModel], values: dict[str, Any]) -> None:
    """404 if a foreign key in ``values`` names a row that does not exist (clearer than the
    database's constraint error, and the same on SQLite and PostgreSQL)."""
    table = model.__table__  # type: ignore[attr-defined]
    for key, value in values.items():
        if value is None or key not in table.c:
            continue
        for foreign_key in table.c[key].foreign_keys:
            target = _model_of_table(foreign_key.column.table.name)
            if db.get(target, value) is None:
                raise not_found(foreign_key.column.table.name, value)


def store(db: Session, row: T, duplicate: str) -> T:
    """Insert or update ``row`` (flushed, so it has its id; the caller commits, with its audit
    entry if any); 409 with ``duplicate`` if a unique key clashes."""
    check_references(db, type(row), row.model_dump())
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise conflict(duplicate) from None
    return row


def create(db: Session, model: type[T], body: BaseModel, duplicate: str, **extra: Any) -> T:
    """A new ``model`` row from a validated request body (plus server-set ``extra``)."""
    return store(db, model(**body.model_dump(), **extra), duplicate)


def patch(
    db: Session, row: T, rules: type[SQLModel], changes: BaseModel, duplicate: str
) -> dict[str, Any]:
    """Apply the fields sent in ``changes`` to ``row``, after checking the merged result against
    ``rules`` (the create model, so cross-field rules hold after a partial change); the caller
    commits. Returns the changed fields' previous values, for the audit log."""
    sent = changes.model_dump(exclude_unset=True)
    merged = {key: getattr(row, key) for key in rules.model_fields} | sent
    try:
        checked = rules.model_validate(merged)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
    before = {key: getattr(row, key) for key in sent}
    for key in sent:
        setattr(row, key, getattr(checked, key))
    store(db, row, duplicate)
    return before
