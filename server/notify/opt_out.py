"""Opting out from the message itself: a signed link per guardian × kind × channel.

The token names what to stop and carries an HMAC-SHA256 of that with the server's secret, so it
needs no table of issued tokens, cannot be forged or bent to another guardian, and keeps working
(idempotently) however often it is followed. :func:`apply_opt_out` records the choice; the outbox
honours it for every later message and the dispatcher for those already queued. The parent (from
their page) or an admin (on their word) lifts it with :func:`lift_opt_out`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr
from sqlmodel import Session, col, select

from server.db import in_chunks, insert_or_ignore
from server.models import Guardian, utc_now
from server.notify.models import ALL_KINDS, NotificationOptOut

OPT_OUT_PATH = "/notify/opt-out"
"""Where the web app serves opt-out links: ``{public_url}{OPT_OUT_PATH}/{token}``."""

OptedOut = frozenset[tuple[str, str]]
"""A guardian's opt-outs as (channel, kind) pairs; kind may be :data:`ALL_KINDS`."""


class OptOutError(ValueError):
    """A token that is malformed, forged, or names a guardian who no longer exists."""


@dataclass(frozen=True, slots=True)
class OptOut:
    guardian_id: int
    kind: str
    channel: str


def _signature(secret: SecretStr, payload: str) -> str:
    digest = hmac.new(
        secret.get_secret_value().encode(), f"opt-out:{payload}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def opt_out_token(secret: SecretStr, opt_out: OptOut) -> str:
    """The URL-safe token that stops ``opt_out.kind`` messages on ``opt_out.channel``."""
    payload = f"{opt_out.guardian_id}.{opt_out.kind}.{opt_out.channel}"
    return f"{payload}.{_signature(secret, payload)}"


def opt_out_url(public_url: str, secret: SecretStr, opt_out: OptOut) -> str:
    return f"{public_url.rstrip('/')}{OPT_OUT_PATH}/{opt_out_token(secret, opt_out)}"


def read_opt_out_token(secret: SecretStr, token: str) -> OptOut:
    """What a token stops; OptOutError when it is not one this server signed."""
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        raise OptOutError("not an opt-out token")
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise OptOutError("the opt-out token's signature does not match")
    return OptOut(int(parts[0]), parts[1], parts[2])


def apply_opt_out(db: Session, secret: SecretStr, token: str) -> OptOut:
    """Record the opt-out ``token`` stands for, in the caller's transaction (following a link
    twice changes nothing). OptOutError for a bad token or a guardian since erased."""
    opt_out = read_opt_out_token(secret, token)
    if db.get(Guardian, opt_out.guardian_id) is None:
        raise OptOutError("the guardian this token was made for no longer exists")
    row = {
        "guardian_id": opt_out.guardian_id,
        "channel": opt_out.channel,
        "kind": opt_out.kind,
        "created_at": utc_now(),
    }
    insert_or_ignore(db, NotificationOptOut, [row], ["guardian_id", "channel", "kind"])
    return opt_out


def lift_opt_out(db: Session, guardian_id: int, channel: str, kind: str) -> bool:
    """Undo an opt-out, in the caller's transaction (the guardian asked for the messages back,
    or an admin did so on their word); False when there was none. Messages skipped meanwhile
    stay skipped: only later ones are sent again."""
    found = db.exec(
        select(NotificationOptOut).where(
            NotificationOptOut.guardian_id == guardian_id,
            NotificationOptOut.channel == channel,
            NotificationOptOut.kind == kind,
        )
    ).first()
    if found is None:
        return False
    db.delete(found)
    return True


def opted_out(db: Session, guardian_ids: Iterable[int]) -> dict[int, OptedOut]:
    """Each of the guardians' opt-outs (guardians without any are absent)."""
    pairs: dict[int, set[tuple[str, str]]] = {}
    for chunk in in_chunks(sorted(set(guardian_ids))):
        query = select(
            NotificationOptOut.guardian_id, NotificationOptOut.channel, NotificationOptOut.kind
        ).where(col(NotificationOptOut.guardian_id).in_(chunk))
        for guardian_id, channel, kind in db.exec(query):
            pairs.setdefault(guardian_id, set()).add((channel, kind))
    return {guardian_id: frozenset(found) for guardian_id, found in pairs.items()}


def wanted_channels(channel_preferences: dict[str, bool], opted: OptedOut, kind: str) -> list[str]:
    """The channels a guardian wants ``kind`` messages on, most preferred first: those switched
    on in the child's link (in its key order) that they have not opted out of."""
    return [
        channel
        for channel, on in channel_preferences.items()
        if on and (channel, kind) not in opted and (channel, ALL_KINDS) not in opted
    ]
