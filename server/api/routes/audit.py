"""The audit log, for admins: who read or changed which student's data, newest first.

Paged by id (``before_id``) like the delivery log, so a page stays the same while new entries
arrive; each entry names its actor's username (None for the system, or for a person no longer a
user: the entry outlives the account).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from server.api.deps import AdminUser, SessionDep
from server.api.schemas.audit import AuditEntry, AuditQuery
from server.models import AuditLog, User

router = APIRouter(tags=["audit"])


def _filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    equal = {
        AuditLog.student_id: query.student_id,
        AuditLog.actor_id: query.actor_id,
        AuditLog.action: query.action,
        AuditLog.entity: query.entity,
    }
    where = [col(column) == value for column, value in equal.items() if value is not None]
    if query.since is not None:
        where.append(col(AuditLog.at) >= query.since)
    if query.until is not None:
        where.append(col(AuditLog.at) < query.until)
    if query.before_id is not None:
        where.append(col(AuditLog.id) < query.before_id)
    return where


@router.get("/audit")
def list_audit(
    _admin: AdminUser, db: SessionDep, query: Annotated[AuditQuery, Query()]
) -> list[AuditEntry]:
    """Audit entries matching the filters, newest first (admins only)."""
    found = db.exec(
        select(AuditLog, User.username)
        .outerjoin(User, col(User.id) == AuditLog.actor_id)
        .where(*_filters(query))
        .order_by(col(AuditLog.id).desc())
        .limit(query.limit)
    ).all()
    return [
        AuditEntry.model_validate(entry.model_dump() | {"actor_username": username})
        for entry, username in found
    ]
