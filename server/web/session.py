"""Who is looking at a page: the same cookie session as the API (:mod:`server.api.deps`), but a
visitor who is not signed in is sent to the sign-in page instead of getting a 401, and one whose
role may not see the page gets a plain 403 page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyCookie

from server.api.deps import SESSION_COOKIE, Auth, SessionDep, authenticate, release
from server.models import Role

_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)

HOME_BY_ROLE: dict[Role, str] = {
    Role.ADMIN: "/admin",
    Role.TEACHER: "/teacher",
    Role.PARENT: "/parent",
    Role.TECHNICIAN: "/admin/devices",
}
"""Where each role lands after signing in."""


def sign_in_redirect(request: Request) -> HTTPException:
    """A 303 to the sign-in page that comes back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(
        status.HTTP_303_SEE_OTHER, headers={"Location": f"/login?next={quote(target, safe='')}"}
    )


def page_auth(
    request: Request, db: SessionDep, cookie: Annotated[str | None, Depends(_cookie)]
) -> Auth:
    """The signed-in visitor (cookie only: pages are for browsers), else a redirect to sign in."""
    try:
        auth = authenticate(db, None, cookie)
    finally:
        release(db)
    if auth is None:
        raise sign_in_redirect(request)
    return auth


PageAuth = Annotated[Auth, Depends(page_auth)]


def page_roles(*roles: Role) -> Callable[[Auth], Awaitable[Auth]]:
    """A dependency giving the visitor if their role is one of ``roles``, else 403."""
    allowed = frozenset(roles)

    async def dependency(auth: PageAuth) -> Auth:
        if auth.user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed / không có quyền")
        return auth

    return dependency


AdminPage = Annotated[Auth, Depends(page_roles(Role.ADMIN))]
StaffPage = Annotated[Auth, Depends(page_roles(Role.ADMIN, Role.TEACHER))]
ParentPage = Annotated[Auth, Depends(page_roles(Role.PARENT))]
DevicesPage = Annotated[Auth, Depends(page_roles(Role.ADMIN, Role.TECHNICIAN))]
