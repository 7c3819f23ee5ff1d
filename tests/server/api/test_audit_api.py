"""The audit log over real HTTP on each database: admins only, filtered, newest first, and paged
so that entries written between two pages neither repeat nor go missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from server import audit
from server.models import AuditLog
from tests.server.api.conftest import Clients, Seed

API = "/api/v1/audit"
T0 = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


def entry(db: Session, minutes: int, **fields: object) -> AuditLog:
    """An audit entry ``minutes`` after T0 (committed)."""
    row = audit.record(db, **{"actor_id": None, "action": "x", "entity": "student", **fields})
    row.at = T0 + timedelta(minutes=minutes)
    db.commit()
    return row


def test_only_admins_read_the_audit_log(clients: Clients) -> None:
    assert clients.admin.get(API).status_code == 200
    for who in (clients.teacher, clients.parent, clients.technician):
        answer = who.get(API)
        assert answer.status_code == 403
        assert "không có quyền" in answer.json()["detail"]


def test_the_log_is_filtered_and_names_the_actor(clients: Clients, seed: Seed, db: Session) -> None:
    child, other = seed.students[0].id, seed.students[1].id
    read = entry(db, 1, actor_id=seed.teacher.id, action="student.read", student_id=child)
    change = entry(
        db,
        2,
        actor_id=seed.admin.id,
        action="attendance.manual_change",
        entity="attendance",
        entity_id=7,
        student_id=child,
        detail={"before": {"status": "absent"}, "after": {"status": "excused"}},
        ip="10.0.0.9",
    )
    system = entry(db, 3, action="student.read", student_id=other)

    def ids(query: str = "") -> list[int]:
        answer = clients.admin.get(f"{API}{query}")
        assert answer.status_code == 200, answer.text
        return [row["id"] for row in answer.json()]

    assert ids() == [system.id, change.id, read.id]
    shown = clients.admin.get(f"{API}?entity=attendance").json()
    assert shown == [
        {
            "id": change.id,
            "at": "2026-12-02T00:02:00Z",
            "actor_id": seed.admin.id,
            "actor_username": "admin",
            "action": "attendance.manual_change",
            "entity": "attendance",
            "entity_id": "7",
            "student_id": child,
            "detail": {"before": {"status": "absent"}, "after": {"status": "excused"}},
            "ip": "10.0.0.9",
        }
    ]
    assert clients.admin.get(f"{API}?student_id={other}").json()[0]["actor_username"] is None
    assert ids(f"?student_id={child}") == [change.id, read.id]
    assert ids(f"?actor_id={seed.teacher.id}") == [read.id]
    assert ids("?action=student.read") == [system.id, read.id]
    assert ids("?action=student.read&student_id=" + str(child)) == [read.id]
    # 07:02 in Hà Nội is 00:02 UTC: since is inclusive, until exclusive.
    window = {"since": "2026-12-02T07:02:00+07:00", "until": "2026-12-02T00:03:00Z"}
    assert ids("?" + "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in window.items())) == [
        change.id
    ]
    assert ids("?entity=nothing") == []


def test_pages_stay_stable_while_entries_arrive(clients: Clients, seed: Seed, db: Session) -> None:
    written = [entry(db, n, student_id=seed.students[0].id).id for n in range(7)]
    first = clients.admin.get(f"{API}?limit=3").json()
    for n in range(3):  # entries written while the admin reads the first page
        entry(db, 10 + n, student_id=seed.students[0].id)
    before_id = first[-1]["id"]
    second = clients.admin.get(f"{API}?limit=3&before_id={before_id}").json()
    third = clients.admin.get(f"{API}?limit=3&before_id={second[-1]['id']}").json()
    assert [row["id"] for row in first + second + third] == written[::-1]


def test_bad_filters_are_refused(clients: Clients) -> None:
    for query in (
        "?since=2026-12-02T07:00:00",  # no offset: which clock?
        "?until=yesterday",
        "?limit=0",
        "?limit=1001",
        "?student_id=0",
        "?before_id=99999999999",
        "?action=" + "x" * 65,
        "?colour=blue",
    ):
        assert clients.admin.get(API + query).status_code == 422, query
