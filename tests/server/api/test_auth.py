"""Sign-in with cookies and CSRF, API tokens, the login rate limit."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from server.api.security import token_hash
from server.auth_models import ApiToken, LoginFailure, WebSession
from tests.server.api.conftest import PASSWORD, Seed
from tests.server.conftest import fresh


def login(client: TestClient, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_sets_an_httponly_lax_cookie_and_returns_the_csrf_token(
    client: TestClient, seed: Seed, db: Session
) -> None:
    response = login(client, "admin")
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "cg_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test
    body = response.json()
    assert body["user"]["username"] == "admin"
    assert body["via"] == "cookie"
    assert body["csrf_token"]
    assert "password_hash" not in body["user"]
    token = client.cookies["cg_session"]
    stored = fresh(db).exec(select(WebSession)).one()
    assert stored.token_hash == token_hash(token)  # only the hash is stored

    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["csrf_token"] == body["csrf_token"]


def test_cookie_session_needs_the_csrf_header_to_change_anything(
    client: TestClient, seed: Seed
) -> None:
    csrf = login(client, "admin").json()["csrf_token"]
    school = {"name": "Trường mới"}
    refused = client.post("/api/v1/schools", json=school)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    wrong = client.post("/api/v1/schools", json=school, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    accepted = client.post("/api/v1/schools", json=school, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201, accepted.text
    # Reads need no token.
    assert client.get("/api/v1/schools").status_code == 200


def test_bearer_tokens_need_no_csrf_header(clients, seed: Seed) -> None:
    assert clients.admin.post("/api/v1/schools", json={"name": "Trường B"}).status_code == 201


def test_logout_ends_the_session(client: TestClient, seed: Seed) -> None:
    csrf = login(client, "teacher-school-a").json()["csrf_token"]
    assert client.post("/api/v1/auth/logout").status_code == 403  # CSRF applies to logout too
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_401(client: TestClient, seed: Seed) -> None:
    wrong = login(client, "admin", "wrong password")
    unknown = login(client, "nobody", "wrong password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_inactive_user_cannot_sign_in(client: TestClient, seed: Seed, db: Session) -> None:
    seed.admin.is_active = False
    db.add(seed.admin)
    db.commit()
    assert login(client, "admin").status_code == 401


def test_five_failures_lock_the_username_from_that_address_with_retry_after(
    client: TestClient, seed: Seed, db: Session
) -> None:
    for _ in range(5):
        assert login(client, "admin", "wrong password").status_code == 401
    locked = login(client, "admin")  # even the right password
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert len(fresh(db).exec(select(LoginFailure)).all()) == 5  # the lock adds none
    assert login(client, "parent-1").status_code == 200  # other usernames are not affected


def test_a_successful_login_clears_earlier_failures(client: TestClient, seed: Seed, db: Session):
    for _ in range(4):
        login(client, "admin", "wrong password")
    assert login(client, "admin").status_code == 200
    assert fresh(db).exec(select(LoginFailure)).all() == []


def test_api_tokens_are_shown_once_listed_without_secret_and_revocable(
    client: TestClient, clients, seed: Seed, db: Session
) -> None:
    created = clients.teacher.post("/api/v1/auth/tokens", json={"name": "script"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("cg_")
    stored = fresh(db).exec(select(ApiToken).where(ApiToken.name == "script")).one()
    assert stored.token_hash == token_hash(token)
    listed = clients.teacher.get("/api/v1/auth/tokens").json()
    assert "script" in [t["name"] for t in listed]
    assert all("token" not in t for t in listed)

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).json()["via"] == "bearer"
    revoked = clients.teacher.delete(f"/api/v1/auth/tokens/{stored.id}")
    assert revoked.status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_nobody_revokes_another_users_token_but_an_admin(clients, seed: Seed, db: Session):
    token_id = clients.teacher.post("/api/v1/auth/tokens", json={"name": "t"}).json()["id"]
    assert clients.parent.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 404
    assert clients.admin.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 204


def test_password_change_needs_the_current_password(client: TestClient, clients, seed: Seed):
    body = {"current_password": "wrong", "new_password": "một mật khẩu mới"}
    assert clients.parent.post("/api/v1/auth/password", json=body).status_code == 403
    body["current_password"] = PASSWORD
    assert clients.parent.post("/api/v1/auth/password", json=body).status_code == 204
    assert login(client, "parent-1").status_code == 401
    assert login(client, "parent-1", "một mật khẩu mới").status_code == 200


def test_no_credentials_is_401(client: TestClient, seed: Seed) -> None:
    response = client.get("/api/v1/schools")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
