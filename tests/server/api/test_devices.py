"""Gates: technicians manage them; a gate authenticates with HTTP Basic ``{site}.{device}`` and
the secret, which is stored as the broker's ``$7$`` hash."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from broker.passwords import verify_password
from server.auth_models import DeviceSecret
from tests.server.api.conftest import Clients, Seed
from tests.server.conftest import fresh


def test_technician_registers_lists_and_removes_devices(clients: Clients, seed: Seed) -> None:
    body = {
        "site_id": seed.world.site.id,
        "device_id": "gate-3",
        "name": "Cổng sau",
        "direction": "out",
    }
    created = clients.technician.post("/api/v1/devices", json=body)
    assert created.status_code == 201, created.text
    device = created.json()
    assert (device["site"], device["credential_id"], device["status"], device["has_secret"]) == (
        "school-a",
        "school-a.gate-3",
        "unknown",
        False,
    )
    assert clients.technician.post("/api/v1/devices", json=body).status_code == 409
    bad = clients.technician.post("/api/v1/devices", json=body | {"device_id": "Gate 3"})
    assert bad.status_code == 422
    listed = clients.technician.get("/api/v1/devices").json()
    assert [d["device_id"] for d in listed] == ["gate-1", "gate-2", "gate-3"]
    off = clients.technician.patch(f"/api/v1/devices/{device['id']}", json={"enabled": False})
    assert off.json()["enabled"] is False
    assert clients.technician.delete(f"/api/v1/devices/{device['id']}").status_code == 204
    assert clients.technician.get(f"/api/v1/devices/{device['id']}").status_code == 404


def test_a_gate_authenticates_with_its_rotated_secret(
    clients: Clients, client: TestClient, seed: Seed, db: Session
) -> None:
    gate = seed.world.devices["gate-1"]
    issued = clients.technician.put(f"/api/v1/devices/{gate.id}/secret")
    assert issued.status_code == 200, issued.text
    username, password = issued.json()["username"], issued.json()["password"]
    assert username == "school-a.gate-1"
    stored = fresh(db).get(DeviceSecret, gate.id).secret_hash
    assert stored.startswith("$7$") and verify_password(password, stored)  # the broker's format

    me = client.get("/api/v1/devices/self", auth=(username, password))
    assert me.status_code == 200, me.text
    assert (me.json()["device_id"], me.json()["has_secret"]) == ("gate-1", True)

    for auth in [(username, "wrong"), ("school-a.gate-2", password), ("school-b.gate-1", password)]:
        refused = client.get("/api/v1/devices/self", auth=auth)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/api/v1/devices/self").status_code == 401

    rotated = clients.admin.put(f"/api/v1/devices/{gate.id}/secret").json()["password"]
    assert client.get("/api/v1/devices/self", auth=(username, password)).status_code == 401
    assert client.get("/api/v1/devices/self", auth=(username, rotated)).status_code == 200

    clients.admin.patch(f"/api/v1/devices/{gate.id}", json={"enabled": False})
    assert client.get("/api/v1/devices/self", auth=(username, rotated)).status_code == 401


def test_a_user_token_is_not_a_device_credential(clients: Clients, seed: Seed) -> None:
    assert clients.admin.get("/api/v1/devices/self").status_code == 401
