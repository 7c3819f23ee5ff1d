"""Pages everyone reaches: sign-in, the landing redirect by role, the language switch, and the
service worker (served from the root so its scope covers every page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response

from server.api.deps import SESSION_COOKIE, SessionDep, authenticate, release
from server.web.i18n import LANG_COOKIE, LANGS
from server.web.session import HOME_BY_ROLE, PageAuth
from server.web.templating import STATIC_DIR, render

router = APIRouter()
ONE_YEAR_S = 365 * 24 * 3600


def _local(target: str | None) -> str:
    """``target`` if it is a path on this site, else the landing page (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/")
def landing(auth: PageAuth) -> RedirectResponse:
    """Each role's own start page."""
    return RedirectResponse(HOME_BY_ROLE[auth.user.role], status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_page(
    request: Request, db: SessionDep, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    """The sign-in form; a visitor already signed in goes on at once."""
    try:
        signed_in = authenticate(db, None, request.cookies.get(SESSION_COOKIE))
    finally:
        release(db)
    if signed_in is not None:
        return RedirectResponse(_local(next), status.HTTP_303_SEE_OTHER)
    return render(request, "login.html", title="login.title", next=_local(next))


@router.get("/lang/{code}")
def switch_language(
    code: str, next: Annotated[str | None, Query(max_length=500)] = None
) -> RedirectResponse:
    """Remember the visitor's language in a cookie and go back to the page they were on."""
    if code not in LANGS:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"language {code} not found / không có ngôn ngữ này"
        )
    response = RedirectResponse(_local(next), status.HTTP_303_SEE_OTHER)
    response.set_cookie(LANG_COOKIE, code, max_age=ONE_YEAR_S, samesite="lax", path="/")
    return response


@router.get("/sw.js")
def service_worker() -> FileResponse:
    """The push service worker, at the root so that it may control every page."""
    return FileResponse(
        STATIC_DIR / "sw.js",
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )
