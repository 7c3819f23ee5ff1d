"""Users: admins manage them; passwords are argon2 hashes, rehashed when the parameters age."""

from __future__ import annotations

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlmodel import Session

from server.models import User
from tests.server.api.conftest import FAST_HASHER, PASSWORD, Clients, Seed
from tests.server.conftest import fresh


def test_admin_creates_a_user_who_can_then_sign_in(
    clients: Clients, client: TestClient, seed: Seed, db: Session
) -> None:
    body = {
        "username": "co.mai",
        "full_name": "Cô Mai",
        "role": "teacher",
        "password": "mật khẩu 123",
    }
    created = clients.admin.post("/api/v1/users", json=body)
    assert created.status_code == 201, created.text
    assert "password" not in created.json() and "password_hash" not in created.json()
    stored = fresh(db).get(User, created.json()["id"])
    assert stored.password_hash.startswith("$argon2id$")
    assert clients.admin.post("/api/v1/users", json=body).status_code == 409
    login = {"username": "co.mai", "password": "mật khẩu 123"}
    assert client.post("/api/v1/auth/login", json=login).status_code == 200


def test_an_admin_cannot_demote_or_delete_themselves(clients: Clients, seed: Seed) -> None:
    me = f"/api/v1/users/{seed.admin.id}"
    assert clients.admin.patch(me, json={"role": "teacher"}).status_code == 409
    assert clients.admin.patch(me, json={"is_active": False}).status_code == 409
    assert clients.admin.delete(me).status_code == 409
    other = f"/api/v1/users/{seed.other_teacher.id}"
    assert clients.admin.patch(other, json={"full_name": "Thầy Bình"}).json()["full_name"] == (
        "Thầy Bình"
    )


def test_login_rehashes_a_password_hashed_with_older_parameters(
    client: TestClient, seed: Seed, db: Session
) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    seed.parent.password_hash = old
    db.add(seed.parent)
    db.commit()
    login = {"username": "parent-1", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=login).status_code == 200
    rehashed = fresh(db).get(User, seed.parent.id).password_hash
    assert rehashed != old
    assert not FAST_HASHER.check_needs_rehash(rehashed)  # the parameters in force
