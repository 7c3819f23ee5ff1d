"""Rendering a page: the Jinja2 environment and what every template gets (the visitor, their
language and its catalogue, the CSRF token the page's scripts send with changes, the menu)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from server.api.deps import Auth
from server.api.security import csrf_token
from server.core.zones import DEFAULT_TIMEZONE
from server.models import Role
from server.web.i18n import CATALOGUES, LANGS, language, translator

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class NavItem:
    href: str
    key: str


_NAV: dict[Role, tuple[NavItem, ...]] = {
    Role.TEACHER: (NavItem("/teacher", "nav.classes"), NavItem("/teacher/leave", "nav.leave")),
    Role.PARENT: (NavItem("/parent", "nav.children"),),
    Role.ADMIN: (
        NavItem("/admin", "nav.dashboard"),
        NavItem("/admin/schools", "nav.schools"),
        NavItem("/admin/classes", "nav.classes_admin"),
        NavItem("/admin/students", "nav.students"),
        NavItem("/admin/guardians", "nav.guardians"),
        NavItem("/admin/import", "nav.import"),
        NavItem("/admin/cards", "nav.cards"),
        NavItem("/admin/devices", "nav.devices"),
        NavItem("/teacher/leave", "nav.leave"),
        NavItem("/admin/deliveries", "nav.deliveries"),
        NavItem("/admin/audit", "nav.audit"),
    ),
    Role.TECHNICIAN: (NavItem("/admin/devices", "nav.devices"),),
}


def _json_script(value: Any) -> Markup:
    """``value`` as JSON safe inside a <script type="application/json"> element."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


templates.env.filters["json_script"] = _json_script


def render(
    request: Request,
    name: str,
    auth: Auth | None = None,
    *,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``name`` rendered for ``request``'s visitor; ``title`` is a catalogue key."""
    lang = language(request)
    t = translator(lang)
    return templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "langs": LANGS,
            "t": t,
            "catalogue": CATALOGUES[lang],
            "title": t(title),
            "user": auth.user if auth else None,
            "csrf": csrf_token(auth.session_token) if auth and auth.session_token else "",
            "nav": _NAV.get(auth.user.role, ()) if auth else (),
            "path": request.url.path,
            "zone": DEFAULT_TIMEZONE,
            **context,
        },
        status_code=status_code,
    )
