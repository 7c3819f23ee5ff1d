"""The pages behind the opt-out link in every message (``/notify/opt-out/{token}``).

GET only shows what the link would stop and a button to confirm it: link scanners and mail
previews fetch GETs, and must not unsubscribe a parent. POST applies it — from that button, or
from a mail client's RFC 8058 one-click ``List-Unsubscribe=One-Click`` POST to the same URL (the
token is the whole authority, so the body needs no checking). A bad or forged token gets a 400
page and changes nothing. Plain HTML, Vietnamese first and English below, no JavaScript.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template
from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from pydantic import SecretStr
from sqlmodel import Session, col, select

from server import audit
from server.api.deps import SessionDep, client_ip
from server.api.routes.notifications import NotifySettingsDep
from server.models import Guardian, Student, StudentGuardian
from server.notify.models import ALL_KINDS
from server.notify.opt_out import (
    OPT_OUT_PATH,
    OptOut,
    OptOutError,
    apply_opt_out,
    read_opt_out_token,
)
from server.notify.templates import PHRASES, MessageKind

router = APIRouter(include_in_schema=False)
PAGES = Path(__file__).with_name("pages")
Token = Annotated[str, PathParam(max_length=200)]
HEADERS = {
    # The token is in the URL: keep it out of caches and out of the Referer of any later page.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


@cache
def _template(name: str) -> Template:
    return Template((PAGES / name).read_text(encoding="utf-8"))


def _page(
    title: str, fragment: str, values: dict[str, str], *, tone: str, code: int = 200
) -> HTMLResponse:
    """``fragment`` filled with ``values`` (escaped here) inside the shared page."""
    content = _template(fragment).substitute({k: html.escape(v) for k, v in values.items()})
    body = _template("page.html").substitute(title=html.escape(title), tone=tone, content=content)
    return HTMLResponse(body, status_code=code, headers=HEADERS)


def _refusal(code: int, heading: tuple[str, str], message: tuple[str, str]) -> HTMLResponse:
    values = {
        "heading_vi": heading[0],
        "heading_en": heading[1],
        "message_vi": message[0],
        "message_en": message[1],
    }
    return _page(f"{heading[0]} / {heading[1]}", "invalid.html", values, tone="bad", code=code)


def _bad_link() -> HTMLResponse:
    return _refusal(
        status.HTTP_400_BAD_REQUEST,
        ("Liên kết không hợp lệ", "Invalid link"),
        (
            "Liên kết ngừng nhận thông báo này không đúng hoặc đã hết hiệu lực. Không có gì "
            "thay đổi. Xin dùng liên kết trong tin nhắn mới nhất, hoặc liên hệ nhà trường.",
            "This unsubscribe link is not valid or no longer works. Nothing was changed. Please "
            "use the link in the latest message, or contact the school.",
        ),
    )


def _not_enabled() -> HTMLResponse:
    return _refusal(
        status.HTTP_404_NOT_FOUND,
        ("Chưa bật liên kết ngừng nhận", "Unsubscribe links are off"),
        (
            "Máy chủ này chưa bật liên kết ngừng nhận thông báo. Xin liên hệ nhà trường.",
            "This server does not offer unsubscribe links. Please contact the school.",
        ),
    )


def _first_names(db: Session, guardian_id: int) -> list[str]:
    """The guardian's children's given names (the last word of a Vietnamese full name)."""
    names = db.exec(
        select(Student.full_name)
        .join(StudentGuardian, col(StudentGuardian.student_id) == Student.id)
        .where(StudentGuardian.guardian_id == guardian_id)
        .order_by(col(Student.full_name))
    ).all()
    return list(dict.fromkeys(name.split()[-1] for name in names if name.split()))


def _what(opt_out: OptOut, children: list[str]) -> dict[str, str]:
    """The words a page uses for what the link stops."""
    if opt_out.kind == ALL_KINDS:
        what_vi, what_en = "mọi thông báo", "any notifications"
    elif opt_out.kind in set(MessageKind):
        kind = MessageKind(opt_out.kind)
        what_vi = f"thông báo “{PHRASES['vi'].digest_events[kind]}”"
        what_en = f"“{PHRASES['en'].digest_events[kind]}” notifications"
    else:
        what_vi, what_en = f"thông báo “{opt_out.kind}”", f"“{opt_out.kind}” notifications"
    return {
        "what_vi": what_vi,
        "what_en": what_en,
        "children_vi": ", ".join(children) or "con của bạn",
        "children_en": ", ".join(children) or "your child",
        "channel": opt_out.channel,
    }


def _read(db: Session, secret: SecretStr, token: str) -> OptOut | None:
    """What ``token`` stops, if it is ours and its guardian still exists."""
    try:
        opt_out = read_opt_out_token(secret, token)
    except (OptOutError, ValueError):
        return None
    return opt_out if db.get(Guardian, opt_out.guardian_id) is not None else None


@router.get(OPT_OUT_PATH + "/{token}", response_class=HTMLResponse)
def confirm_opt_out(token: Token, db: SessionDep, settings: NotifySettingsDep) -> HTMLResponse:
    """The confirmation page; changes nothing."""
    if settings.opt_out_secret is None:
        return _not_enabled()
    opt_out = _read(db, settings.opt_out_secret, token)
    if opt_out is None:
        return _bad_link()
    values = _what(opt_out, _first_names(db, opt_out.guardian_id))
    return _page("Ngừng nhận thông báo / Unsubscribe", "confirm.html", values, tone="ask")


@router.post(OPT_OUT_PATH + "/{token}", response_class=HTMLResponse)
def apply_opt_out_link(
    token: Token, db: SessionDep, settings: NotifySettingsDep, request: Request
) -> HTMLResponse:
    """Stop what the link names (again harmlessly if already stopped), and say so."""
    if settings.opt_out_secret is None:
        return _not_enabled()
    try:
        opt_out = apply_opt_out(db, settings.opt_out_secret, token)
    except (OptOutError, ValueError):
        db.rollback()
        return _bad_link()
    audit.record(
        db,
        actor_id=None,
        action="notification.opt_out",
        entity="notification_opt_out",
        detail={
            "guardian_id": opt_out.guardian_id,
            "kind": opt_out.kind,
            "channel": opt_out.channel,
        },
        ip=client_ip(request),
    )
    values = _what(opt_out, _first_names(db, opt_out.guardian_id))
    db.commit()
    return _page("Đã ngừng nhận / Unsubscribed", "done.html", values, tone="ok")
