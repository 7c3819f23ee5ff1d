"""Sign in and out, who am I, password change, and API tokens for scripts.

A web session is a random token in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS), stored
hashed with an expiry; its CSRF token comes back from login and ``/auth/me``. Failed logins are
counted per username and client address in the database, so every worker enforces the same limit.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import delete
from sqlmodel import Session, col, select

from server.api.deps import (
    SESSION_COOKIE,
    AuthDep,
    CurrentUser,
    IdPath,
    SessionDep,
    client_ip,
    not_found,
)
from server.api.schemas.auth import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenPublic,
    LoginRequest,
    PasswordChange,
    SessionInfo,
)
from server.api.schemas.users import UserPublic
from server.api.security import (
    csrf_token,
    hash_password,
    new_api_token,
    new_token,
    token_hash,
    verify_password,
)
from server.auth_models import ApiToken, LoginFailure, WebSession
from server.models import Role, User, utc_now

SESSION_TTL = timedelta(hours=12)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
API_TOKEN_PREFIX_SHOWN = 8

router = APIRouter(prefix="/auth", tags=["auth"])

BAD_LOGIN = HTTPException(
    status.HTTP_401_UNAUTHORIZED, "wrong username or password / sai tên đăng nhập hoặc mật khẩu"
)


def _retry_after(db: Session, username: str, ip: str, now: datetime) -> int | None:
    """Seconds until another attempt is allowed, or None if one is allowed now."""
    recent = db.exec(
        select(LoginFailure.at)
        .where(
            LoginFailure.username == username,
            LoginFailure.ip == ip,
            col(LoginFailure.at) > now - FAILURE_WINDOW,
        )
        .order_by(col(LoginFailure.at))
    ).all()
    if len(recent) < MAX_FAILURES:
        return None
    # Allowed again once enough of the counted failures have left the window.
    frees_at = recent[len(recent) - MAX_FAILURES] + FAILURE_WINDOW
    return max(1, math.ceil((frees_at - now).total_seconds()))


def _record_failure(db: Session, username: str, ip: str, now: datetime) -> None:
    db.exec(
        delete(LoginFailure).where(
            col(LoginFailure.username) == username,
            col(LoginFailure.ip) == ip,
            col(LoginFailure.at) <= now - FAILURE_WINDOW,
        )
    )
    db.add(LoginFailure(username=username, ip=ip, at=now))
    db.commit()


def _session_info(
    auth_user: User, session_token: str | None, expires_at: datetime | None
) -> SessionInfo:
    return SessionInfo(
        user=UserPublic.model_validate(auth_user, from_attributes=True),
        via="cookie" if session_token else "bearer",
        csrf_token=csrf_token(session_token) if session_token else None,
        expires_at=expires_at,
    )


@router.post(
    "/login",
    responses={
        401: {"description": "Wrong username or password."},
        429: {"description": "Too many failed attempts; see Retry-After."},
    },
)
def login(body: LoginRequest, request: Request, response: Response, db: SessionDep) -> SessionInfo:
    """Check the password and open a web session (cookie ``cg_session``)."""
    now = utc_now()
    ip = client_ip(request) or "unknown"
    key = body.username.lower()
    wait = _retry_after(db, key, ip, now)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed logins, try again in {wait} s / "
            f"đăng nhập sai quá nhiều lần, thử lại sau {wait} giây",
            headers={"Retry-After": str(wait)},
        )
    user = db.exec(select(User).where(User.username == body.username)).first()
    ok, rehashed = verify_password(body.password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        _record_failure(db, key, ip, now)
        raise BAD_LOGIN
    if rehashed is not None:
        user.password_hash = rehashed
    user.last_login_at = now
    db.exec(
        delete(LoginFailure).where(col(LoginFailure.username) == key, col(LoginFailure.ip) == ip)
    )
    db.exec(
        delete(WebSession).where(
            col(WebSession.user_id) == user.id, col(WebSession.expires_at) <= now
        )
    )
    token = new_token()
    expires_at = now + SESSION_TTL
    user_agent = request.headers.get("user-agent")
    db.add(
        WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            expires_at=expires_at,
            ip=ip,
            user_agent=user_agent[:255] if user_agent else None,
        )
    )
    db.add(user)
    db.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return _session_info(user, token, expires_at)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(auth: AuthDep, _user: CurrentUser, response: Response, db: SessionDep) -> None:
    """End the web session (a bearer token stays valid: revoke it under ``/auth/tokens``)."""
    if auth.session_id is not None:
        db.exec(delete(WebSession).where(col(WebSession.id) == auth.session_id))
        db.commit()
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")


@router.get("/me")
def me(auth: AuthDep, db: SessionDep) -> SessionInfo:
    """The signed-in user, and for a web session its CSRF token and expiry."""
    expires_at = db.get(WebSession, auth.session_id).expires_at if auth.session_id else None
    return _session_info(auth.user, auth.session_token, expires_at)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordChange, auth: AuthDep, user: CurrentUser, db: SessionDep) -> None:
    """Change one's own password; every other web session of the user ends."""
    ok, _ = verify_password(body.current_password, user.password_hash)
    if not ok:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong current password / sai mật khẩu")
    user.password_hash = hash_password(body.new_password)
    db.add(user)
    others = col(WebSession.user_id) == user.id
    if auth.session_id is not None:
        others &= col(WebSession.id) != auth.session_id
    db.exec(delete(WebSession).where(others))
    db.commit()


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: ApiTokenCreate, user: CurrentUser, db: SessionDep) -> ApiTokenCreated:
    """A new API token for the current user; the token itself is shown only in this answer."""
    token = new_api_token()
    expires_at = utc_now() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row = ApiToken(
        token_hash=token_hash(token),
        prefix=token[:API_TOKEN_PREFIX_SHOWN],
        name=body.name,
        user_id=user.id,
        expires_at=expires_at,
    )
    db.add(row)
    db.commit()
    return ApiTokenCreated(**row.model_dump(), token=token)


@router.get("/tokens")
def list_tokens(user: CurrentUser, db: SessionDep) -> list[ApiTokenPublic]:
    """The current user's tokens that are not revoked."""
    rows = db.exec(
        select(ApiToken)
        .where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))
        .order_by(col(ApiToken.id))
    )
    return [ApiTokenPublic.model_validate(row, from_attributes=True) for row in rows]


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: IdPath, user: CurrentUser, db: SessionDep) -> None:
    """Revoke a token: one's own, or anyone's for an admin."""
    row = db.get(ApiToken, token_id)
    if (
        row is None
        or row.revoked_at is not None
        or (row.user_id != user.id and user.role != Role.ADMIN)
    ):
        raise not_found("token", token_id)
    row.revoked_at = utc_now()
    db.add(row)
    db.commit()
