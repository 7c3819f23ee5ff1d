"""Provisioning through the API: registering by site code, claim tokens (once, before they
expire), revocation, and the broker accounts ``gatectl broker render`` writes."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from broker.passwords import verify_password
from server.auth_models import DeviceClaimToken, DeviceSecret
from server.gallery_key import GalleryKey
from server.models import AuditLog, Device
from tests.server.api.conftest import Clients, Seed
from tests.server.conftest import fresh


def _claim_token(clients: Clients, device: Device, ttl_s: int = 900) -> dict:
    issued = clients.technician.post(
        f"/api/v1/devices/{device.id}/claim-tokens", json={"ttl_s": ttl_s}
    )
    assert issued.status_code == 201, issued.text
    return issued.json()


def _state(db: Session, device: Device) -> tuple:
    """What a refused claim must leave unchanged: the secret and the token rows."""
    db = fresh(db)
    secret = db.get(DeviceSecret, device.id)
    tokens = db.exec(select(DeviceClaimToken).where(DeviceClaimToken.device_id == device.id))
    return (
        secret.secret_hash if secret else None,
        sorted((t.id, t.used_at, t.sealed_secret) for t in tokens),
    )


def test_a_technician_registers_a_gate_by_its_site_code(clients: Clients, seed: Seed) -> None:
    made = clients.technician.post(
        "/api/v1/devices", json={"site": "school-a", "device_id": "gate-9", "direction": "out"}
    )
    assert made.status_code == 201, made.text
    assert (made.json()["site_id"], made.json()["credential_id"]) == (
        seed.world.site.id,
        "school-a.gate-9",
    )
    unknown = clients.technician.post(
        "/api/v1/devices", json={"site": "nowhere", "device_id": "gate-9"}
    )
    assert unknown.status_code == 404 and "không tìm thấy" in unknown.json()["detail"]
    both = clients.technician.post(
        "/api/v1/devices",
        json={"site": "school-a", "site_id": seed.world.site.id, "device_id": "gate-8"},
    )
    neither = clients.technician.post("/api/v1/devices", json={"device_id": "gate-8"})
    assert both.status_code == neither.status_code == 422


def test_a_claim_token_gives_the_credential_once(
    clients: Clients, client: TestClient, seed: Seed, db: Session, gallery_signing_key: GalleryKey
) -> None:
    gate = seed.world.devices["gate-1"]
    issued = _claim_token(clients, gate)
    assert issued["token"].startswith("cgc_")
    assert (issued["site"], issued["device"], issued["username"]) == (
        "school-a",
        "gate-1",
        "school-a.gate-1",
    )
    stored = fresh(db).exec(select(DeviceClaimToken)).one()
    assert issued["token"] not in (stored.token_hash, stored.sealed_secret)

    claimed = client.post("/api/v1/devices/claim", json={"token": issued["token"]})
    assert claimed.status_code == 200, claimed.text
    credential = claimed.json()
    assert credential["username"] == "school-a.gate-1"
    assert credential["gallery_public_key"] == gallery_signing_key.public_pem().decode()
    secret_hash = fresh(db).get(DeviceSecret, gate.id).secret_hash
    assert verify_password(credential["password"], secret_hash)  # what the broker will check
    me = client.get("/api/v1/devices/self", auth=("school-a.gate-1", credential["password"]))
    assert me.status_code == 200
    used = fresh(db).exec(select(DeviceClaimToken)).one()
    assert used.used_at is not None and used.sealed_secret is None

    before = _state(db, gate)
    again = client.post("/api/v1/devices/claim", json={"token": issued["token"]})
    assert again.status_code == 410 and "đã được dùng" in again.json()["detail"]
    assert _state(db, gate) == before


def test_an_expired_or_unknown_token_is_refused_and_changes_nothing(
    clients: Clients, client: TestClient, seed: Seed, db: Session
) -> None:
    gate = seed.world.devices["gate-1"]
    issued = _claim_token(clients, gate)
    row = fresh(db).exec(select(DeviceClaimToken)).one()
    row.expires_at -= timedelta(seconds=901)
    db.add(row)
    db.commit()
    before = _state(db, gate)

    expired = client.post("/api/v1/devices/claim", json={"token": issued["token"]})
    assert expired.status_code == 410 and "hết hạn" in expired.json()["detail"]
    unknown = client.post("/api/v1/devices/claim", json={"token": "cgc_" + "x" * 43})
    assert unknown.status_code == 401 and "không hợp lệ" in unknown.json()["detail"]
    assert _state(db, gate) == before


def test_a_newer_credential_supersedes_an_unused_token(
    clients: Clients, client: TestClient, seed: Seed
) -> None:
    gate = seed.world.devices["gate-1"]
    first = _claim_token(clients, gate)
    second = _claim_token(clients, gate)
    assert client.post("/api/v1/devices/claim", json={"token": first["token"]}).status_code == 401
    clients.technician.put(f"/api/v1/devices/{gate.id}/secret")
    assert client.post("/api/v1/devices/claim", json={"token": second["token"]}).status_code == 401


def test_only_technicians_and_admins_issue_claim_tokens(clients: Clients, seed: Seed) -> None:
    gate = seed.world.devices["gate-1"]
    refused = clients.teacher.post(f"/api/v1/devices/{gate.id}/claim-tokens", json={})
    assert refused.status_code == 403
    too_short = clients.technician.post(
        f"/api/v1/devices/{gate.id}/claim-tokens", json={"ttl_s": 5}
    )
    assert too_short.status_code == 422
    assert clients.technician.post("/api/v1/devices/999/claim-tokens", json={}).status_code == 404


def test_revoking_cuts_the_gate_off_the_api_and_the_broker_accounts(
    clients: Clients, client: TestClient, seed: Seed, db: Session
) -> None:
    gate, other = seed.world.devices["gate-1"], seed.world.devices["gate-2"]
    password = clients.technician.put(f"/api/v1/devices/{gate.id}/secret").json()["password"]
    clients.technician.put(f"/api/v1/devices/{other.id}/secret")
    pending = _claim_token(clients, other)
    accounts = clients.technician.get("/api/v1/devices/broker-accounts").json()
    assert [a["username"] for a in accounts] == ["school-a.gate-1", "school-a.gate-2"]
    assert verify_password(password, accounts[0]["password_hash"])
    assert clients.teacher.get("/api/v1/devices/broker-accounts").status_code == 403

    revoked = clients.technician.post(f"/api/v1/devices/{gate.id}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["enabled"], revoked.json()["has_secret"]) == (False, False)
    assert client.get("/api/v1/devices/self", auth=("school-a.gate-1", password)).status_code == 401
    accounts = clients.technician.get("/api/v1/devices/broker-accounts").json()
    assert [a["username"] for a in accounts] == ["school-a.gate-2"]
    audit = fresh(db).exec(select(AuditLog).where(AuditLog.action == "device.revoke")).one()
    assert (audit.actor_id, audit.entity_id) == (seed.technician.id, str(gate.id))

    # A disabled gate gets no claim token, and revoking another gate leaves its token alone.
    refused = clients.technician.post(f"/api/v1/devices/{gate.id}/claim-tokens", json={})
    assert refused.status_code == 409 and "bị khóa" in refused.json()["detail"]
    assert client.post("/api/v1/devices/claim", json={"token": pending["token"]}).status_code == 200


def test_the_gallery_key_is_given_to_technicians(
    clients: Clients, client: TestClient, gallery_signing_key: GalleryKey
) -> None:
    shown = clients.technician.get("/api/v1/devices/gallery-key")
    assert shown.status_code == 200
    key = gallery_signing_key
    assert shown.json() == {"key_id": key.key_id, "public_key": key.public_pem().decode()}
    assert client.get("/api/v1/devices/gallery-key").status_code == 401
