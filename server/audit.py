"""The audit log: who read or changed what. Every change a person makes to attendance or to a
student's data goes through :func:`record`, in the same transaction as the change itself, so a
change is never committed without its entry (nor an entry without its change)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from server.models import AuditLog


def record(
    db: Session,
    *,
    actor_id: int | None,
    action: str,
    entity: str,
    entity_id: int | str | None = None,
    student_id: int | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditLog:
    """Add an audit entry to the session (committed with the caller's transaction).

    ``actor_id`` None means the system did it; ``detail`` must be JSON-serialisable (for a
    change, give ``before`` and ``after``).
    """
    entry = AuditLog(
        actor_id=actor_id,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        student_id=student_id,
        detail=detail or {},
        ip=ip,
    )
    db.add(entry)
    return entry
