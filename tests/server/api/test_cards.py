"""Cards: one UID, one student; every read and change is audited."""

from __future__ import annotations

from sqlmodel import Session, select

from server.models import AuditLog
from tests.server.api.conftest import Clients, Publishes, Seed
from tests.server.conftest import fresh


def test_cards_are_unique_validated_audited_and_published(
    clients: Clients, seed: Seed, db: Session, publishes: Publishes
) -> None:
    hs1, hs2 = seed.students[0].id, seed.students[1].id
    card = {"uid": "04A1B2C3D4E5F6", "student_id": hs1}
    created = clients.admin.post("/api/v1/cards", json=card)
    assert created.status_code == 201, created.text
    clash = clients.admin.post("/api/v1/cards", json=card | {"student_id": hs2})
    assert clash.status_code == 409
    assert "đã được gán" in clash.json()["detail"]
    lower_case = clients.admin.post("/api/v1/cards", json=card | {"uid": "04a1b2c3"})
    assert lower_case.status_code == 422  # gates send upper-case hex
    found = clients.admin.get("/api/v1/cards", params={"uid": "04a1b2c3d4e5f6"}).json()
    assert [c["student_id"] for c in found] == [hs1]
    card_id = created.json()["id"]
    off = clients.admin.patch(f"/api/v1/cards/{card_id}", json={"active": False})
    assert off.json()["active"] is False
    assert clients.admin.delete(f"/api/v1/cards/{card_id}").status_code == 204
    assert clients.admin.get(f"/api/v1/cards/{card_id}").status_code == 404
    rows = fresh(db).exec(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(r.action, r.student_id) for r in rows] == [
        ("card.create", hs1),
        ("student.read", hs1),
        ("card.update", hs1),
        ("card.delete", hs1),
    ]
    assert rows[2].detail == {"before": {"active": True}, "after": {"active": False}}
    school = seed.world.school.id
    assert publishes.calls == [
        (school, "card assigned"),
        (school, "card changed"),
        (school, "card removed"),
    ]


def test_cards_and_classes_come_in_pages_when_asked(clients: Clients, seed: Seed) -> None:
    """Every row by default (what scripts rely on); a page with limit and offset (the web's
    record pages)."""
    for n, student in enumerate(seed.students[:3]):
        card = {"uid": f"04A1B2C3D4E5F{n}", "student_id": student.id}
        assert clients.admin.post("/api/v1/cards", json=card).status_code == 201
    every = [c["uid"] for c in clients.admin.get("/api/v1/cards").json()]
    assert len(every) == 3
    first = clients.admin.get("/api/v1/cards", params={"limit": 2}).json()
    rest = clients.admin.get("/api/v1/cards", params={"limit": 2, "offset": 2}).json()
    assert [c["uid"] for c in first + rest] == every
    assert clients.admin.get("/api/v1/cards", params={"limit": 0}).status_code == 422
    classes = [c["id"] for c in clients.admin.get("/api/v1/classes").json()]
    paged = [
        c["id"]
        for offset in range(0, len(classes), 1)
        for c in clients.admin.get("/api/v1/classes", params={"limit": 1, "offset": offset}).json()
    ]
    assert paged == classes and len(classes) >= 2
