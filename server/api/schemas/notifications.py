"""Notifications as the API takes and shows them: the delivery log, a parent's Web Push
subscriptions and preferences, and a school's switches.

The preference rules themselves are :class:`~server.notify.preferences.GuardianPreferences`'s
(channels listed once, quiet hours not empty and on the school's clock); the request model here
extends it, so the API and the outbox judge a choice by the same code.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.api.schemas.common import MAX_ID
from server.notify.channel import PushSubscription as BrowserSubscription
from server.notify.channels import ChannelName
from server.notify.delivery_log import DeliveryLogEntry
from server.notify.models import NotificationStatus
from server.notify.preferences import GuardianPreferences, QuietHours
from server.notify.templates import Locale, MessageKind

__all__ = [
    "ChildNotificationPreferences",
    "DeliveryCounts",
    "DeliveryLogEntry",
    "DeliveryLogFilter",
    "DeliveryLogPage",
    "MyNotificationPreferences",
    "NotificationPolicyPublic",
    "NotificationPolicySet",
    "NotificationPreferencesSet",
    "OptedOut",
    "PushKeys",
    "PushSubscriptionIn",
    "PushSubscriptionPublic",
    "QuietHours",
    "VapidPublicKey",
]

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts a push endpoint may reach over plain http: a push service run by tests on this machine."""
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the delivery log --------------------------------------------------------------------------


class DeliveryLogFilter(_Strict):
    """Filters of ``GET /notifications`` and ``/notifications/counts`` (all optional, AND)."""

    school_id: Id | None = None
    student_id: Id | None = None
    guardian_id: Id | None = None
    status: NotificationStatus | None = None
    channel: str | None = Field(default=None, max_length=32)
    day_from: dt.date | None = Field(default=None, description="School-local date, inclusive.")
    day_to: dt.date | None = Field(default=None, description="School-local date, inclusive.")


class DeliveryLogPage(DeliveryLogFilter):
    """The filters and a page: newest first; ``before_id`` is the last id of the page before."""

    before_id: Id | None = Field(default=None, description="The page after this entry.")
    limit: int = Field(default=100, ge=1, le=1000)


class DeliveryCounts(BaseModel):
    """How many messages matching the filters are in each status (every status listed)."""

    by_status: dict[NotificationStatus, int]
    total: int


# --- Web Push ------------------------------------------------------------------------------------


class VapidPublicKey(BaseModel):
    """The ``applicationServerKey`` for ``PushManager.subscribe``: the school's VAPID public key,
    an uncompressed P-256 point, base64url without padding."""

    public_key: str


def _b64url_bytes(value: str, size: int, what: str) -> bytes:
    """``value`` decoded; ValueError unless it is strict base64url of ``size`` bytes (the
    decoder alone would skip characters outside the alphabet)."""
    try:
        if not _BASE64URL.fullmatch(value):
            raise ValueError
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} không phải base64url / {what} is not base64url") from None
    if len(raw) != size:
        raise ValueError(f"{what} phải dài {size} byte / {what} must be {size} bytes")
    return raw


class PushKeys(_Strict):
    p256dh: str = Field(
        max_length=100, description="The browser's P-256 public key (65 bytes), base64url."
    )
    auth: str = Field(max_length=30, description="The browser's auth secret (16 bytes), base64url.")

    @field_validator("p256dh")
    @classmethod
    def _point(cls, value: str) -> str:
        if _b64url_bytes(value, 65, "p256dh")[0] != 4:
            raise ValueError("p256dh sai định dạng / p256dh is not an uncompressed P-256 point")
        return value

    @field_validator("auth")
    @classmethod
    def _secret(cls, value: str) -> str:
        _b64url_bytes(value, 16, "auth")
        return value


class PushSubscriptionIn(_Strict):
    """What the browser's ``PushSubscription.toJSON()`` gives, as it gives it."""

    endpoint: str = Field(
        max_length=1000, description="The push service URL: https:// (http:// only on loopback)."
    )
    expirationTime: float | None = Field(
        default=None, description="Sent by browsers, ignored: push services report expiry."
    )
    keys: PushKeys

    @field_validator("endpoint")
    @classmethod
    def _push_service(cls, value: str) -> str:
        try:
            url = urlsplit(value)
            host = url.hostname
        except ValueError:
            host = None
        if host is None or any(c.isspace() for c in value):
            raise ValueError("endpoint không phải địa chỉ URL / endpoint is not a URL")
        if url.scheme == "https" or (url.scheme == "http" and host in LOOPBACK_HOSTS):
            return value
        raise ValueError("endpoint phải là địa chỉ https:// / endpoint must be an https:// URL")

    def browser(self) -> BrowserSubscription:
        return BrowserSubscription(self.endpoint, self.keys.p256dh, self.keys.auth)


class PushSubscriptionPublic(BaseModel):
    endpoint: str
    created_at: dt.datetime


# --- a parent's preferences ----------------------------------------------------------------------


class NotificationPreferencesSet(GuardianPreferences):
    """A parent's choices for one child (``PUT /me/notification-preferences/{student_id}``).

    ``channels`` are this child's, most preferred first, each one the school has configured.
    ``kinds``, ``quiet_hours``, ``digest``, ``digest_at`` and ``locale`` are the parent's for all
    their children: saving them for one child changes them for the others too.
    """

    channels: list[ChannelName] = Field(  # type: ignore[assignment]
        max_length=16, description="Channel names the school has configured, most preferred first."
    )
    locale: Locale = "vi"


class OptedOut(BaseModel):
    """A link in a message the parent followed: ``kind`` ('all' for every kind) stopped on
    ``channel``, whatever the preferences say."""

    channel: str
    kind: str


class ChildNotificationPreferences(BaseModel):
    """One child of the signed-in parent: what the parent chose, and what the school offers."""

    student_id: int
    student_code: str
    student_name: str
    class_name: str | None
    school_id: int
    channels: list[str] = Field(description="This child's channels, most preferred first.")
    kinds: list[MessageKind] = Field(description="The kinds the parent wants (all children).")
    quiet_hours: QuietHours | None
    digest: bool
    digest_at: dt.time
    locale: Locale
    available_channels: list[str] = Field(description="Channels the child's school has set up.")
    allowed_kinds: list[MessageKind] = Field(
        description="Kinds the child's school sends (the others it has switched off)."
    )
    opted_out: list[OptedOut] = Field(description="The parent's opt-outs (all children).")


class MyNotificationPreferences(BaseModel):
    children: list[ChildNotificationPreferences]


# --- a school's switches -------------------------------------------------------------------------


class NotificationPolicySet(_Strict):
    disabled_kinds: frozenset[MessageKind] = Field(
        description="Kinds of message the school sends to no one."
    )


class NotificationPolicyPublic(BaseModel):
    school_id: int
    disabled_kinds: list[MessageKind]
    allowed_kinds: list[MessageKind]
