"""Students: changes and reads are audited; history, JSON export and erasure."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from sqlmodel import Session, select

from server.models import (
    Attendance,
    AuditLog,
    BiometricConsent,
    Card,
    EnrollmentSource,
    FaceEnrollment,
    Guardian,
    LeaveReason,
    LeaveRequest,
    RawEvent,
    Student,
    StudentGuardian,
    utc_now,
)
from server.notify.models import Notification
from tests.server.api.conftest import Clients, Publishes, Seed
from tests.server.api.gates import MONDAY, pass_gate
from tests.server.conftest import fresh


def audit_rows(db: Session, **where) -> list[AuditLog]:
    statement = select(AuditLog).order_by(AuditLog.id)
    for key, value in where.items():
        statement = statement.where(getattr(AuditLog, key) == value)
    return list(fresh(db).exec(statement))


def test_create_update_and_read_are_audited(clients: Clients, seed: Seed, db: Session) -> None:
    body = {
        "code": "HS9",
        "full_name": "Lê Văn Chín",
        "school_id": seed.world.school.id,
        "class_id": seed.world.school_class.id,
    }
    created = clients.admin.post("/api/v1/students", json=body)
    assert created.status_code == 201, created.text
    student_id = created.json()["id"]
    assert clients.admin.post("/api/v1/students", json=body).status_code == 409

    changed = clients.admin.patch(f"/api/v1/students/{student_id}", json={"full_name": "Lê Chín"})
    assert changed.status_code == 200
    assert clients.teacher.get(f"/api/v1/students/{student_id}").status_code == 200

    rows = audit_rows(db, student_id=student_id)
    assert [(r.action, r.actor_id) for r in rows] == [
        ("student.create", seed.admin.id),
        ("student.update", seed.admin.id),
        ("student.read", seed.teacher.id),
    ]
    assert rows[1].detail == {
        "before": {"full_name": "Lê Văn Chín"},
        "after": {"full_name": "Lê Chín"},
    }
    assert rows[2].detail == {"what": "record"}
    assert rows[2].ip is not None


CHAU_ID = "079208001234"


def _new_student(seed: Seed, **fields: object) -> dict[str, object]:
    return {"full_name": "Nguyễn Thị Minh Châu", "school_id": seed.world.school.id} | fields


def test_a_national_id_is_kept_and_read_back_audited(
    clients: Clients, seed: Seed, db: Session
) -> None:
    created = clients.admin.post(
        "/api/v1/students", json=_new_student(seed, code="HS10", national_id=CHAU_ID)
    )
    assert created.status_code == 201, created.text
    student_id = created.json()["id"]
    assert created.json()["national_id"] == CHAU_ID
    read = clients.admin.get(f"/api/v1/students/{student_id}")
    assert read.json()["national_id"] == CHAU_ID
    assert [r.action for r in audit_rows(db, student_id=student_id)] == [
        "student.create",
        "student.read",
    ]
    # Students without one are many; the unique index lets every one of them be NULL.
    assert fresh(db).get(Student, seed.students[0].id).national_id is None


@pytest.mark.parametrize(
    "national_id", ["07920800123", "0792080012345", "07920800123A", "O79208001234", "", "٠" * 12]
)
def test_a_national_id_that_is_not_12_digits_is_refused(
    clients: Clients, seed: Seed, db: Session, national_id: str
) -> None:
    body = _new_student(seed, code="HS10", national_id=national_id)
    refused = clients.admin.post("/api/v1/students", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "national_id"]
    changed = clients.admin.patch(
        f"/api/v1/students/{seed.students[0].id}", json={"national_id": national_id}
    )
    assert changed.status_code == 422, changed.text
    db = fresh(db)
    assert db.exec(select(Student).where(Student.code == "HS10")).first() is None
    assert db.get(Student, seed.students[0].id).national_id is None


def test_a_national_id_belongs_to_one_student(clients: Clients, seed: Seed, db: Session) -> None:
    first, second = seed.students[0].id, seed.students[1].id
    taken = "another student has this national ID number / số định danh đã thuộc về học sinh khác"
    assert (
        clients.admin.patch(f"/api/v1/students/{first}", json={"national_id": CHAU_ID}).status_code
        == 200
    )
    again = clients.admin.patch(f"/api/v1/students/{first}", json={"national_id": CHAU_ID})
    assert again.status_code == 200, "a student's own number is not a clash"

    duplicate = clients.admin.post(
        "/api/v1/students", json=_new_student(seed, code="HS10", national_id=CHAU_ID)
    )
    assert (duplicate.status_code, duplicate.json()["detail"]) == (409, taken)
    moved = clients.admin.patch(
        f"/api/v1/students/{second}", json={"national_id": CHAU_ID, "full_name": "Tên Mới"}
    )
    assert (moved.status_code, moved.json()["detail"]) == (409, taken)

    db = fresh(db)
    assert db.exec(select(Student).where(Student.code == "HS10")).first() is None
    assert (db.get(Student, second).national_id, db.get(Student, second).full_name) == (
        None,
        "Học sinh 2",
    )
    cleared = clients.admin.patch(f"/api/v1/students/{first}", json={"national_id": None})
    assert cleared.status_code == 200 and cleared.json()["national_id"] is None
    moved = clients.admin.patch(f"/api/v1/students/{second}", json={"national_id": CHAU_ID})
    assert moved.status_code == 200 and moved.json()["national_id"] == CHAU_ID
    updates = [r.detail for r in audit_rows(db, action="student.update", student_id=second)]
    assert updates == [{"before": {"national_id": None}, "after": {"national_id": CHAU_ID}}]


def test_a_list_writes_one_audit_row_per_student_shown(
    clients: Clients, seed: Seed, db: Session
) -> None:
    clients.teacher.get(f"/api/v1/classes/{seed.world.school_class.id}/students")
    rows = audit_rows(db, actor_id=seed.teacher.id)
    assert sorted(r.student_id for r in rows) == sorted(s.id for s in seed.students)


def test_a_refused_read_writes_no_audit_row(clients: Clients, seed: Seed, db: Session) -> None:
    assert clients.teacher.get(f"/api/v1/students/{seed.other_students[0].id}").status_code == 403
    assert audit_rows(db) == []


def test_guardian_links(clients: Clients, seed: Seed, db: Session) -> None:
    student = seed.students[1]
    guardian = clients.admin.post(
        "/api/v1/guardians", json={"full_name": "Phạm Thị Mẹ", "phone": "0912345678"}
    ).json()
    url = f"/api/v1/students/{student.id}/guardians/{guardian['id']}"
    linked = clients.admin.put(url, json={"relationship": "mother", "is_primary": True})
    assert linked.status_code == 200, linked.text
    assert linked.json()["channel_preferences"]["sms"] is True
    listed = clients.teacher.get(f"/api/v1/students/{student.id}/guardians").json()
    assert [(g["guardian"]["full_name"], g["relationship"]) for g in listed] == [
        ("Phạm Thị Mẹ", "mother")
    ]
    assert clients.admin.delete(url).status_code == 204
    assert clients.admin.delete(url).status_code == 404
    actions = [r.action for r in audit_rows(db, student_id=student.id)]
    assert actions == ["student.guardian_link", "student.read", "student.guardian_unlink"]


def test_history_shows_times_on_the_schools_clock(clients: Clients, seed: Seed, db: Session):
    pass_gate(db, seed.students[0], MONDAY, time(7, 20))
    history = clients.parent.get(
        f"/api/v1/students/{seed.students[0].id}/history",
        params={"from": MONDAY.isoformat(), "to": MONDAY.isoformat()},
    )
    assert history.status_code == 200, history.text
    (mark,) = history.json()["marks"]
    assert mark["status"] == "late"
    assert mark["first_in"] == f"{MONDAY.isoformat()}T07:20:00+07:00"
    reversed_range = clients.parent.get(
        f"/api/v1/students/{seed.students[0].id}/history",
        params={"from": "2025-10-10", "to": "2025-10-01"},
    )
    assert reversed_range.status_code == 422


def _biometrics(db: Session, seed: Seed, student: Student) -> None:
    consent = BiometricConsent(
        student_id=student.id, given_by_name="Trần Văn Bố", given_at=utc_now()
    )
    db.add(consent)
    db.flush()
    db.add(
        FaceEnrollment(
            student_id=student.id,
            consent_id=consent.id,
            model_pack="dlib-r29-mtcnn",
            embedding=b"\0" * 512,
            dim=128,
            source=EnrollmentSource.PHOTO,
        )
    )
    db.add(Card(uid="04A1B2C3D4E5F6", student_id=student.id))
    db.add(
        LeaveRequest(
            student_id=student.id,
            starts_on=MONDAY,
            ends_on=MONDAY,
            reason=LeaveReason.MEDICAL,
            note="sốt",
        )
    )
    db.commit()


def test_export_holds_everything_about_the_student(clients: Clients, seed: Seed, db: Session):
    child = seed.students[0]
    _biometrics(db, seed, child)
    pass_gate(db, child, MONDAY, time(7, 5))
    clients.admin.patch(f"/api/v1/students/{child.id}", json={"national_id": CHAU_ID})
    export = clients.parent.get(f"/api/v1/students/{child.id}/export")
    assert export.status_code == 200, export.text
    data = export.json()
    assert (data["student"]["code"], data["student"]["national_id"]) == ("HS1", CHAU_ID)
    assert [g["guardian"]["full_name"] for g in data["guardians"]] == ["Trần Văn Bố"]
    assert [c["uid"] for c in data["cards"]] == ["04A1B2C3D4E5F6"]
    assert len(data["consents"]) == len(data["face_enrollments"]) == 1
    assert "embedding" not in data["face_enrollments"][0]
    assert [m["status"] for m in data["attendance"]] == ["present"]
    assert [e["payload"]["student_id"] for e in data["gate_events"]] == ["HS1"]
    assert [r.detail["what"] for r in audit_rows(db, actor_id=seed.parent.id)] == ["export"]


def test_erasure_removes_personal_data_and_keeps_anonymous_counts(
    clients: Clients, seed: Seed, db: Session, publishes: Publishes
) -> None:
    child, guardian_id = seed.students[0], seed.guardian.id
    _biometrics(db, seed, child)
    pass_gate(db, child, MONDAY, time(7, 5))
    clients.admin.patch(
        f"/api/v1/students/{child.id}", json={"full_name": "Tên Cũ", "national_id": CHAU_ID}
    )
    arrived = datetime.combine(MONDAY, time(0, 5), UTC)
    db.add(  # the message parents got about the arrival: it names the child
        Notification(
            idempotency_key=f"st{child.id}:arrived",
            school_id=seed.world.school.id,
            student_id=child.id,
            guardian_id=guardian_id,
            channel="sms",
            kind="arrived",
            day=MONDAY,
            event_at=arrived,
            subject="Tên Cũ đã đến trường",
            text="Tên Cũ đã đến trường lúc 07:05",
            short_text="Ten Cu da den truong luc 07:05",
            status="accepted",
            next_attempt_at=arrived,
        )
    )
    db.commit()

    erased = clients.admin.post(f"/api/v1/students/{child.id}/erase")
    assert erased.status_code == 200, erased.text
    summary = erased.json()
    assert summary | {"student_id": 0} == {
        "student_id": 0,
        "face_enrollments": 1,
        "consents": 1,
        "cards": 1,
        "guardian_links": 1,
        "guardians": 1,  # the guardian had no other child
        "leave_requests": 1,
        "notifications": 1,
        "gate_events_scrubbed": 1,
        "attendance_kept": 1,
        "audit_entries_scrubbed": 1,  # the update's before/after names
        "galleries": [],
    }
    assert publishes.calls[-1] == (seed.world.school.id, "erasure")  # templates leave the gates
    db = fresh(db)
    student = db.get(Student, child.id)
    assert (student.code, student.full_name, student.national_id, student.status) == (
        f"erased-{child.id}",
        "(đã xoá)",
        None,
        "transferred",
    )
    for model in (
        FaceEnrollment,
        BiometricConsent,
        Card,
        StudentGuardian,
        LeaveRequest,
        Notification,
    ):
        assert db.exec(select(model).where(model.student_id == child.id)).all() == []
    assert db.get(Guardian, guardian_id) is None
    (event,) = db.exec(select(RawEvent)).all()
    assert (event.student_id, event.payload["student_id"]) == (None, None)
    (mark,) = db.exec(select(Attendance).where(Attendance.student_id == child.id)).all()
    assert (mark.status, mark.first_in) == ("present", None)
    trail = audit_rows(db, student_id=child.id)
    assert "Tên Cũ" not in str([r.detail for r in trail])
    assert CHAU_ID not in str([r.detail for r in trail])
    assert trail[-1].action == "student.erase"
    # The parent lost the link, so the child is now invisible to them.
    assert clients.parent.get(f"/api/v1/students/{child.id}").status_code == 404
