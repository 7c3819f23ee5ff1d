"""Schools and their calendars: CRUD through the shared resource routes, with the errors a
client can act on (404, 409, 422)."""

from __future__ import annotations

from tests.server.api.conftest import Clients, Seed


def test_reference_data_round_trip_and_errors(clients: Clients, seed: Seed) -> None:
    api = clients.admin
    school = api.post("/api/v1/schools", json={"name": "THCS Lê Lợi", "school_weekdays": "123456"})
    assert school.status_code == 201, school.text
    school_id = school.json()["id"]
    assert school.json()["timezone"] == "Asia/Ho_Chi_Minh"

    site = {"code": "le-loi", "name": "Cơ sở chính", "school_id": school_id}
    assert api.post("/api/v1/sites", json=site).status_code == 201
    duplicate = api.post("/api/v1/sites", json=site)
    assert duplicate.status_code == 409
    assert "mã cơ sở đã tồn tại" in duplicate.json()["detail"]
    sites = api.get("/api/v1/sites", params={"school_id": school_id}).json()
    assert [s["code"] for s in sites] == ["le-loi"]

    # The models' patterns hold (site codes become MQTT topic segments).
    bad = api.post("/api/v1/sites", json=site | {"code": "Le Loi/#"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "code"]
    # A reference to nothing is a 404 naming it.
    orphan = api.post("/api/v1/sites", json=site | {"code": "x", "school_id": 424242})
    assert orphan.status_code == 404
    assert "school 424242" in orphan.json()["detail"]

    year = {
        "school_id": school_id,
        "name": "2025-2026",
        "starts_on": "2025-09-05",
        "ends_on": "2026-05-31",
    }
    year_id = api.post("/api/v1/school-years", json=year).json()["id"]
    reversed_range = api.patch(f"/api/v1/school-years/{year_id}", json={"ends_on": "2025-01-01"})
    assert reversed_range.status_code == 422  # the model's rule holds after a partial change
    renamed = api.patch(f"/api/v1/school-years/{year_id}", json={"name": "Năm học 2025-2026"})
    assert renamed.json()["name"] == "Năm học 2025-2026"

    session = {
        "school_id": school_id,
        "code": "morning",
        "name": "Buổi sáng",
        "start": "07:00",
        "late_after": "07:15",
        "absent_after": "07:30",
        "end": "11:30",
    }
    created = api.post("/api/v1/sessions", json=session)
    assert created.status_code == 201
    unordered = api.post("/api/v1/sessions", json=session | {"code": "x", "late_after": "06:00"})
    assert unordered.status_code == 422
    # A time with an offset names another clock (and cannot be ordered against naive ones).
    offset = api.post("/api/v1/sessions", json=session | {"code": "y", "late_after": "07:15+01:00"})
    assert offset.status_code == 422
    assert offset.json()["detail"][0]["loc"] == ["body", "late_after"]
    session_url = f"/api/v1/sessions/{created.json()['id']}"
    assert api.patch(session_url, json={"absent_after": "07:30Z"}).status_code == 422
    assert api.patch(session_url, json={"absent_after": None}).status_code == 422
    assert api.get(session_url).json()["absent_after"] == "07:30:00"

    assert api.get("/api/v1/schools/999999").status_code == 404
    assert api.delete(f"/api/v1/schools/{school_id}").status_code == 204
    assert api.get(f"/api/v1/schools/{school_id}").status_code == 404


def test_a_school_with_students_cannot_be_deleted(clients: Clients, seed: Seed) -> None:
    response = clients.admin.delete(f"/api/v1/schools/{seed.world.school.id}")
    assert response.status_code == 409
    assert clients.admin.get(f"/api/v1/schools/{seed.world.school.id}").status_code == 200


def test_unknown_fields_and_out_of_range_ids_are_422(clients: Clients, seed: Seed) -> None:
    api = clients.admin
    assert (
        api.patch(f"/api/v1/schools/{seed.world.school.id}", json={"nmae": "x"}).status_code == 422
    )
    assert api.get("/api/v1/schools/99999999999999999999").status_code == 422
    assert (
        api.post("/api/v1/sites", json={"code": "a", "name": "a", "school_id": 2**40}).status_code
        == 422
    )
