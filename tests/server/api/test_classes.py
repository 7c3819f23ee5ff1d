"""Classes: admins manage them; the homeroom teacher must be a teacher of the same school year's
school."""

from __future__ import annotations

from tests.server.api.conftest import Clients, Seed


def test_class_lifecycle_and_its_rules(clients: Clients, seed: Seed) -> None:
    api = clients.admin
    body = {
        "school_id": seed.world.school.id,
        "school_year_id": seed.world.year.id,
        "name": "11B1",
        "grade": 11,
        "homeroom_teacher_id": seed.other_teacher.id,
    }
    created = api.post("/api/v1/classes", json=body)
    assert created.status_code == 201, created.text
    class_id = created.json()["id"]
    assert api.post("/api/v1/classes", json=body).status_code == 409  # same name, same year
    parent_as_teacher = api.post(
        "/api/v1/classes", json=body | {"name": "11B2", "homeroom_teacher_id": seed.parent.id}
    )
    assert parent_as_teacher.status_code == 422
    assert "homeroom_teacher_id" in parent_as_teacher.json()["detail"]
    other_school = api.post("/api/v1/schools", json={"name": "Trường khác"}).json()["id"]
    wrong_year = api.post(
        "/api/v1/classes", json=body | {"name": "11B3", "school_id": other_school}
    )
    assert wrong_year.status_code == 422
    assert api.patch(f"/api/v1/classes/{class_id}", json={"grade": 13}).status_code == 422

    # The new homeroom teacher sees it; deleting it leaves its students without a class.
    assert "11B1" in [c["name"] for c in clients.other_teacher.get("/api/v1/classes").json()]
    moved = api.patch(f"/api/v1/students/{seed.students[2].id}", json={"class_id": class_id})
    assert moved.json()["class_id"] == class_id
    assert api.delete(f"/api/v1/classes/{class_id}").status_code == 204
    assert api.get(f"/api/v1/students/{seed.students[2].id}").json()["class_id"] is None
