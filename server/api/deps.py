"""FastAPI dependencies every route uses: the database session, who is calling, what they may see.

People authenticate with a session cookie (the web pages) or a bearer token (scripts); gates with
HTTP Basic (``{site}.{device}`` and the device's secret). Roles: admin everything; teacher the
students of the classes they are homeroom teacher of; parent their own children; technician
devices only. A parent asking for someone else's child gets 404, so ids do not reveal who exists.

Cookie-authenticated requests that change something must carry the session's CSRF token in
``X-CSRF-Token``; :data:`CurrentUser` checks that itself, so no route can forget it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Path, Query, Request, Security, status
from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyCookie, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from fastapi.security.http import HTTPAuthorizationCredentials
from sqlalchemy import Engine, bindparam
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col, select

from broker import passwords
from server import audit
from server.api.audit_writer import audit_writer
from server.api.schemas.common import MAX_ID
from server.api.security import csrf_token, same_secret, token_hash
from server.auth_models import ApiToken, DeviceSecret, WebSession
from server.db import get_engine as db_engine
from server.db import writer
from server.models import (
    Device,
    Guardian,
    Role,
    SchoolClass,
    Site,
    Student,
    StudentGuardian,
    User,
    utc_now,
)

SESSION_COOKIE = "cg_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEVICE_REALM = "campusgate-devices"
# Compared against when the device is unknown, so the answer takes as long either way.
_DUMMY_DEVICE_HASH = passwords.hash_password(passwords.new_password())

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""An id in a URL path: out-of-range numbers get 422, not a database error."""
OptionalLimit = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Default: every row.")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip, for paging.")]
"""Paging of lists that answer every row unless asked for a page (classes, cards)."""

_bearer = HTTPBearer(auto_error=False, description="An API token from POST /api/v1/auth/tokens.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Set by login.")
_basic = HTTPBasic(auto_error=False, realm=DEVICE_REALM, description="Gates: {site}.{device}.")


# --- the database -------------------------------------------------------------------------------


async def get_engine() -> Engine:
    """The process's engine (:func:`server.db.get_engine`, from the settings); tests and
    benchmarks override this dependency to point the app at their own database."""
    return db_engine()


async def get_db(
    request: Request, engine: Annotated[Engine, Depends(get_engine)]
) -> AsyncIterator[Session]:
    """One session per request. Requests that change something take SQLite's write lock when
    their transaction begins (see :func:`server.db.writer`), so they wait their turn instead of
    failing; reads never wait for it. Objects stay readable after a commit.

    Opening a session touches no database, so this runs on the event loop: FastAPI sends every
    plain ``def`` dependency through its thread pool, and those hops cost more than the work
    under load. (The same goes for the other dependencies here that do no I/O.)"""
    bind = engine if request.method in SAFE_METHODS else writer(engine)
    with Session(bind, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def release(db: Session) -> None:
    """End the session's transaction, handing its connection back to the pool.

    Every plain ``def`` dependency runs in its own trip through FastAPI's thread pool, and so
    does the route. A dependency that kept its connection until the route ran could deadlock
    under load: all the pool's threads waiting for a connection, every connection held by a
    request waiting for a thread. So the dependencies here that query release before returning.
    (Objects they loaded stay usable: sessions do not expire them on commit.)
    """
    db.commit()


# --- people -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Auth:
    """Who is calling and how; ``session_token`` is the raw cookie of a web session."""

    user: User
    via: Literal["cookie", "bearer"]
    session_token: str | None = None
    session_id: int | None = None


def _unauthorized(detail: str | None = None) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail or "not signed in / chưa đăng nhập",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _token_user() -> Any:
    now = bindparam("now")
    return (
        select(User)
        .join(ApiToken, col(ApiToken.user_id) == User.id)
        .where(
            col(ApiToken.token_hash) == bindparam("token_hash"),
            col(ApiToken.revoked_at).is_(None),
            col(ApiToken.expires_at).is_(None) | (col(ApiToken.expires_at) > now),
            col(User.is_active).is_(True),
        )
    )


def _session_user() -> Any:
    return (
        select(User, WebSession.id)
        .join(WebSession, col(WebSession.user_id) == User.id)
        .where(
            col(WebSession.token_hash) == bindparam("token_hash"),
            col(WebSession.expires_at) > bindparam("now"),
            col(User.is_active).is_(True),
        )
    )


# Built once: every request runs one of them, and building costs more than running.
_TOKEN_USER, _SESSION_USER = _token_user(), _session_user()


def authenticate(db: Session, bearer: str | None, cookie: str | None) -> Auth | None:
    """The user a bearer token (preferred) or a session cookie names, if active and neither
    expired nor revoked; None otherwise. For a WebSocket, pass ``websocket.cookies``'s
    ``cg_session``: HTTP dependencies (like :func:`get_auth`) do not run there."""
    now = utc_now()
    if bearer is not None:
        params = {"token_hash": token_hash(bearer), "now": now}
        user = db.exec(_TOKEN_USER, params=params).first()
        return Auth(user, "bearer") if user is not None else None
    if cookie:
        row = db.exec(_SESSION_USER, params={"token_hash": token_hash(cookie), "now": now}).first()
        if row is not None:
            return Auth(row[0], "cookie", cookie, row[1])
    return None


def get_auth(
    db: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    cookie: Annotated[str | None, Security(_cookie)],
) -> Auth:
    """The caller (see :func:`authenticate`), or 401."""
    try:
        auth = authenticate(db, bearer.credentials if bearer else None, cookie)
    finally:
        release(db)
    if auth is None:
        raise _unauthorized(
            "invalid or expired token / mã truy cập không hợp lệ" if bearer else None
        )
    return auth


AuthDep = Annotated[Auth, Depends(get_auth)]


async def check_csrf(request: Request, auth: AuthDep) -> None:
    """403 for a cookie-authenticated POST/PUT/PATCH/DELETE without the session's CSRF token
    in ``X-CSRF-Token``. Bearer tokens are never sent by a browser on its own, so they need none."""
    if request.method in SAFE_METHODS or auth.via != "cookie":
        return
    given = request.headers.get(CSRF_HEADER, "")
    assert auth.session_token is not None
    if not given or not same_secret(given, csrf_token(auth.session_token)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"missing or wrong {CSRF_HEADER} header / thiếu hoặc sai mã CSRF",
        )


CsrfProtected = Depends(check_csrf)
"""Use as ``dependencies=[CsrfProtected]``; :data:`CurrentUser` already includes it."""


async def get_current_user(auth: AuthDep, _csrf: Annotated[None, CsrfProtected]) -> User:
    """The signed-in user, with the CSRF check done for unsafe methods."""
    return auth.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def forbidden(detail: str = "not allowed / không có quyền") -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail)


def not_found(what: str, key: object) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} {key} not found / không tìm thấy")


def require_roles(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency giving the current user if their role is one of ``roles``, else 403.

    ``Annotated[User, Depends(require_roles(Role.ADMIN))]`` in a signature, or
    ``dependencies=[Depends(require_roles(...))]`` on a router."""
    allowed = frozenset(roles)

    async def dependency(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise forbidden(
                f"role {user.role} may not do this / vai trò {user.role} không có quyền"
            )
        return user

    return dependency


AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]
StaffUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.TEACHER))]
PersonUser = Annotated[User, Depends(require_roles(Role.ADMIN, Role.TEACHER, Role.PARENT))]
"""Anyone who may see students (everyone but technicians)."""


# --- what a person may see ----------------------------------------------------------------------


def check_class(user: User, school_class: SchoolClass) -> None:
    """403 unless ``user`` is an admin or the class's homeroom teacher."""
    if user.role == Role.ADMIN:
        return
    if user.role == Role.TEACHER and school_class.homeroom_teacher_id == user.id:
        return
    raise forbidden("not your class / không phải lớp chủ nhiệm của bạn")


def class_or_404(db: Session, user: User, class_id: int) -> SchoolClass:
    """The class ``class_id`` if ``user`` may see it: 404 if unknown, 403 if not theirs."""
    school_class = db.get(SchoolClass, class_id)
    if school_class is None:
        raise not_found("class", class_id)
    check_class(user, school_class)
    return school_class


def is_guardian_of(db: Session, user: User, student_id: int) -> bool:
    """Whether ``user`` signs in as a guardian linked to the student."""
    return (
        db.exec(
            select(StudentGuardian.student_id)
            .join(Guardian, col(Guardian.id) == StudentGuardian.guardian_id)
            .where(Guardian.user_id == user.id, StudentGuardian.student_id == student_id)
        ).first()
        is not None
    )


def student_or_404(db: Session, user: User, student_id: int) -> Student:
    """The student ``student_id`` if ``user`` may see them. Unknown: 404. A teacher's student of
    another class: 403. A parent's not-their-child: 404 (existence does not leak). Technician:
    403."""
    student = db.get(Student, student_id)
    if user.role == Role.PARENT:
        if student is None or not is_guardian_of(db, user, student_id):
            raise not_found("student", student_id)
        return student
    if user.role == Role.TECHNICIAN:
        raise forbidden()
    if student is None:
        raise not_found("student", student_id)
    if user.role == Role.TEACHER:
        school_class = db.get(SchoolClass, student.class_id) if student.class_id else None
        if school_class is None or school_class.homeroom_teacher_id != user.id:
            raise forbidden("not a student of your class / không phải học sinh lớp bạn")
    return student


def get_student(student_id: IdPath, user: CurrentUser, db: SessionDep) -> Student:
    """Path dependency for routes under ``/students/{student_id}``: see :func:`student_or_404`."""
    try:
        return student_or_404(db, user, student_id)
    finally:
        release(db)


StudentDep = Annotated[Student, Depends(get_student)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit_read(
    db: Session,
    user: User,
    students: int | Iterable[int],
    what: str,
    *,
    request: Request | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record that ``user`` read ``what`` of these students' personal data (one row per
    student), committed before the data is returned, so nothing is shown that is not in the log.

    The rows go through :mod:`server.api.audit_writer` (group commit). Meant for read routes: the
    session's transaction ends first, so that on SQLite the request holds no lock the writer
    needs. A change is audited with :func:`audit_change`, in the change's own transaction.
    """
    ids = [students] if isinstance(students, int) else list(dict.fromkeys(students))
    if not ids:
        return
    release(db)
    now = utc_now()
    entry = {
        "at": now,
        "actor_id": user.id,
        "action": "student.read",
        "entity": "student",
        "detail": {"what": what, **(detail or {})},
        "ip": client_ip(request) if request is not None else None,
    }
    rows = [entry | {"entity_id": str(sid), "student_id": sid} for sid in ids]
    try:
        audit_writer(db.get_bind()).write(rows)
    except SQLAlchemyError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "could not write the audit log; try again / chưa ghi được nhật ký truy cập",
        ) from None


def audit_change(
    db: Session,
    user: User,
    action: str,
    row: SQLModel,
    *,
    student_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request: Request | None = None,
) -> None:
    """Add the audit entry of a change a person made to ``row``, committed with the change.
    ``before`` holds the changed fields' old values; ``after`` defaults to the row's values of
    the same fields."""
    if before is not None and after is None:
        after = {key: getattr(row, key) for key in before}
    audit.record(
        db,
        actor_id=user.id,
        action=action,
        entity=row.__tablename__,  # type: ignore[attr-defined]
        entity_id=getattr(row, "id", None),
        student_id=student_id,
        detail=jsonable_encoder({"before": before, "after": after}),
        ip=client_ip(request) if request is not None else None,
    )


# --- gates --------------------------------------------------------------------------------------


def _device_unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "device credentials required / thiết bị chưa xác thực",
        headers={"WWW-Authenticate": f'Basic realm="{DEVICE_REALM}"'},
    )


def get_device(
    db: SessionDep, credentials: Annotated[HTTPBasicCredentials | None, Security(_basic)]
) -> Device:
    """The enabled gate whose ``{site}.{device}`` and secret were sent with HTTP Basic."""
    if credentials is None:
        raise _device_unauthorized()
    site_code, _, device_code = credentials.username.partition(".")
    row = db.exec(
        select(Device, DeviceSecret.secret_hash)
        .join(Site, col(Site.id) == Device.site_id)
        .join(DeviceSecret, col(DeviceSecret.device_id) == Device.id)
        .where(Site.code == site_code, Device.device_id == device_code)
    ).first()
    release(db)
    secret_hash = row[1] if row is not None else _DUMMY_DEVICE_HASH
    matches = passwords.verify_password(credentials.password, secret_hash)
    if row is None or not matches or not row[0].enabled:
        raise _device_unauthorized()
    return row[0]


DeviceDep = Annotated[Device, Depends(get_device)]
