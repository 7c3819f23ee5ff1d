"""The live roll, a teacher's manual change, and leave requests."""

from __future__ import annotations

from datetime import time

from sqlmodel import Session, select

from server.api.roll import class_roll
from server.models import AuditLog
from tests.server.api.conftest import Clients, Seed
from tests.server.api.gates import MONDAY, pass_gate, vn
from tests.server.conftest import fresh


def _by_code(roll: dict) -> dict[str, dict]:
    """code → the morning mark."""
    return {s["code"]: s["marks"][0] for s in roll["students"]}


def test_the_roll_shows_every_student_with_status_times_and_gates(
    clients: Clients, seed: Seed, db: Session
) -> None:
    hs1, hs2, _hs3 = seed.students
    pass_gate(db, hs1, MONDAY, time(6, 55), device="gate-1")
    pass_gate(db, hs1, MONDAY, time(11, 35), direction="out", device="gate-2")
    pass_gate(db, hs2, MONDAY, time(7, 16))
    url = f"/api/v1/classes/{seed.world.school_class.id}/roll"
    response = clients.teacher.get(url, params={"date": MONDAY.isoformat()})
    assert response.status_code == 200, response.text
    roll = response.json()
    assert (roll["class_name"], roll["school_day"], roll["timezone"]) == (
        "10A1",
        True,
        "Asia/Ho_Chi_Minh",
    )
    assert [s["code"] for s in roll["sessions"]] == ["morning", "afternoon"]
    marks = _by_code(roll)
    assert marks["HS1"]["status"] == "present"
    assert marks["HS1"]["first_in"] == f"{MONDAY}T06:55:00+07:00"
    assert (marks["HS1"]["gate_in"], marks["HS1"]["last_out"], marks["HS1"]["gate_out"]) == (
        "gate-1",
        f"{MONDAY}T11:35:00+07:00",
        "gate-2",
    )
    assert marks["HS2"]["status"] == "late"
    assert marks["HS3"]["status"] == "absent"  # past absent-after, not seen, not excused
    assert roll["totals"]["morning"] == {
        "present": 1,
        "late": 1,
        "absent": 1,
        "excused": 0,
        "not_yet": 0,
    }
    # Not a school day (Sunday): no one is absent.
    sunday = clients.teacher.get(url, params={"date": "2025-10-05"}).json()
    assert sunday["school_day"] is False
    assert {m["status"] for m in _by_code(sunday).values()} == {"not_yet"}


def test_before_absent_after_an_unseen_student_is_not_yet(seed: Seed, db: Session) -> None:
    cls = seed.world.school_class
    before = class_roll(db, cls, MONDAY, vn(MONDAY, time(7, 29, 59)))
    at = class_roll(db, cls, MONDAY, vn(MONDAY, time(7, 30)))
    assert {s.marks[0].status for s in before.students} == {"not_yet"}
    assert {s.marks[0].status for s in at.students} == {"absent"}
    assert {s.marks[1].status for s in at.students} == {"not_yet"}  # the afternoon


def test_reading_the_roll_is_audited_per_student(clients: Clients, seed: Seed, db: Session):
    url = f"/api/v1/classes/{seed.world.school_class.id}/roll"
    clients.teacher.get(url, params={"date": MONDAY.isoformat()})
    rows = fresh(db).exec(select(AuditLog)).all()
    assert sorted(r.student_id for r in rows) == sorted(s.id for s in seed.students)
    assert {(r.actor_id, r.detail["what"], r.detail["date"]) for r in rows} == {
        (seed.teacher.id, "roll", MONDAY.isoformat())
    }


def test_a_manual_change_wins_over_the_gate_and_is_audited(
    clients: Clients, seed: Seed, db: Session
) -> None:
    hs3 = seed.students[2]
    url = f"/api/v1/students/{hs3.id}/attendance/{MONDAY}/{seed.world.morning.id}"
    changed = clients.teacher.put(url, json={"status": "excused", "note": "khám bệnh"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["status"], changed.json()["source"]) == ("excused", "manual")
    pass_gate(db, hs3, MONDAY, time(7, 0))  # the gate comes later and does not overrule
    roll = clients.teacher.get(
        f"/api/v1/classes/{seed.world.school_class.id}/roll", params={"date": MONDAY.isoformat()}
    ).json()
    assert _by_code(roll)["HS3"]["status"] == "excused"
    (entry,) = (
        fresh(db).exec(select(AuditLog).where(AuditLog.action == "attendance.manual_change")).all()
    )
    assert (entry.actor_id, entry.student_id, entry.detail["after"]["status"]) == (
        seed.teacher.id,
        hs3.id,
        "excused",
    )
    sunday = f"/api/v1/students/{hs3.id}/attendance/2025-10-05/{seed.world.morning.id}"
    refused = clients.teacher.put(sunday, json={"status": "present"})
    assert refused.status_code == 422
    assert "not a school day" in refused.json()["detail"]


def test_leave_requested_by_a_parent_and_approved_by_the_teacher_excuses(
    clients: Clients, seed: Seed
) -> None:
    child = seed.students[0]
    body = {
        "student_id": child.id,
        "starts_on": str(MONDAY),
        "ends_on": str(MONDAY),
        "reason": "medical",
        "note": "sốt",
    }
    created = clients.parent.post("/api/v1/leave-requests", json=body)
    assert created.status_code == 201, created.text
    leave_id = created.json()["id"]
    assert created.json()["status"] == "pending"
    assert clients.parent.post(f"/api/v1/leave-requests/{leave_id}/approve").status_code == 403
    listed = clients.teacher.get("/api/v1/leave-requests", params={"status": "pending"}).json()
    assert [leave["id"] for leave in listed] == [leave_id]
    approved = clients.teacher.post(f"/api/v1/leave-requests/{leave_id}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    again = clients.teacher.post(f"/api/v1/leave-requests/{leave_id}/reject")
    assert again.status_code == 409
    roll = clients.teacher.get(
        f"/api/v1/classes/{seed.world.school_class.id}/roll", params={"date": str(MONDAY)}
    ).json()
    assert {s["code"]: [m["status"] for m in s["marks"]] for s in roll["students"]}["HS1"] == [
        "excused",
        "excused",
    ]


def test_leave_for_someone_elses_child_is_404_and_rejection_works(
    clients: Clients, seed: Seed
) -> None:
    body = {
        "student_id": seed.other_students[0].id,
        "starts_on": str(MONDAY),
        "ends_on": str(MONDAY),
        "reason": "family",
    }
    assert clients.parent.post("/api/v1/leave-requests", json=body).status_code == 404
    body["student_id"] = seed.students[1].id
    leave_id = clients.teacher.post("/api/v1/leave-requests", json=body).json()["id"]
    rejected = clients.teacher.post(f"/api/v1/leave-requests/{leave_id}/reject")
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
