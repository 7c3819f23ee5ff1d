"""The one interface every notification channel implements, and what it hands back.

The dispatcher (outbox worker) knows nothing about providers: it gives a channel an
:class:`Outgoing` and gets a :class:`Delivery` whose ``outcome`` says what to do next —
``accepted`` (record ``provider_id``, done), ``temporary`` (retry later, no sooner than
``retry_after_s`` when the provider said so) or ``permanent`` (stop; fall back to the guardian's
next channel). A channel never raises for a provider failure, so one bad gateway cannot stall a
batch; it raises only for programming errors.

Channels are synchronous on purpose: pywebpush, smtplib and Apprise all block, so the dispatcher
runs ``send`` in worker threads rather than us wrapping half the adapters in ``to_thread``.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.notify.phone import PhoneNumberError, VnPhone, parse_vn_mobile
from server.notify.templates import Locale

Address = Literal["phone", "email", "push", "apprise"]


class Outcome(StrEnum):
    """What the dispatcher should do with the outbox row after one attempt."""

    ACCEPTED = "accepted"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of one send attempt; build it with the class methods below."""

    outcome: Outcome
    detail: str = ""
    provider_id: str | None = None
    retry_after_s: float | None = None
    subscription_gone: bool = False
    """Web Push only: the push service says the subscription no longer exists (404/410);
    the caller deletes it so it is never tried again."""

    @classmethod
    def accepted(cls, provider_id: str | None, detail: str = "") -> Delivery:
        return cls(Outcome.ACCEPTED, detail, provider_id=provider_id)

    @classmethod
    def temporary(cls, detail: str, retry_after_s: float | None = None) -> Delivery:
        return cls(Outcome.TEMPORARY, detail, retry_after_s=retry_after_s)

    @classmethod
    def permanent(cls, detail: str, *, subscription_gone: bool = False) -> Delivery:
        return cls(Outcome.PERMANENT, detail, subscription_gone=subscription_gone)


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """A browser's PushSubscription (``subscription.toJSON()``): endpoint and its two keys."""

    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification for one guardian on one channel, fully rendered.

    ``text`` is the full message with Vietnamese diacritics; ``short_text`` is the compact
    unaccented form for SMS. ``fields`` are the values the text was rendered from (child's name,
    class, time, gate…), for channels such as Zalo ZNS that fill a pre-approved template
    themselves. ``idempotency_key`` is the outbox row's key: the same key on a retry, so providers
    that deduplicate (eSMS ``RequestId``) or collapse (Web Push ``Topic``, e-mail ``Message-ID``)
    never show a parent the same message twice.
    """

    idempotency_key: str
    kind: str
    """A :class:`~server.notify.templates.MessageKind` value, or ``"digest"``."""
    subject: str
    text: str
    short_text: str
    locale: Locale = "vi"
    fields: dict[str, str] = field(default_factory=dict)
    phone: str | None = None
    email: str | None = None
    push: PushSubscription | None = None
    apprise_target: str | None = None
    """The guardian's own destination for an Apprise channel: a Telegram chat id, an ntfy
    topic, or a whole Apprise URL, depending on the school's URL template."""
    url: str | None = None
    """Page the notification opens (the child's attendance), for push and Apprise."""
    opt_out_url: str | None = None


class ChannelConfig(BaseModel):
    """What every channel's settings share; each adapter adds its own fields and a ``kind``
    literal that selects it. Secrets are ``SecretStr`` so they never reach a log or a repr."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Give up on one attempt after this long."
    )


class Channel(ABC):
    """A configured way to reach guardians (Frigate's communicator pattern).

    ``kind`` names the adapter ("esms", "webpush"…); ``name`` is what the school called this
    configured instance, and what guardians' preferences list. ``address`` says which field of
    :class:`Outgoing` the channel needs, so the dispatcher can skip a channel a guardian has no
    address for. ``deduplicates`` is true when the provider itself drops a second request with
    the same idempotency key, i.e. when retrying after an ambiguous failure (a timeout after the
    request was sent) cannot reach the parent twice.
    """

    kind: ClassVar[str]
    address: ClassVar[Address]
    deduplicates: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def send(self, message: Outgoing) -> Delivery:
        """Try once to hand ``message`` to the provider; never raises for provider failures."""

    def close(self) -> None:  # noqa: B027 - an optional hook: most channels hold no connection
        """Release connections; the default has none."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def recipient_phone(message: Outgoing) -> VnPhone | Delivery:
    """The guardian's mobile number, or a permanent failure saying why there is none to use."""
    if not message.phone:
        return Delivery.permanent("the guardian has no phone number")
    try:
        return parse_vn_mobile(message.phone)
    except PhoneNumberError as exc:
        return Delivery.permanent(str(exc))


_SAFE_REFERENCE = re.compile(r"^[A-Za-z0-9._:-]+$")


def provider_reference(idempotency_key: str, max_length: int) -> str:
    """The idempotency key as a provider's request or tracking id of at most ``max_length``.

    Kept verbatim when it fits and uses only safe characters (so an operator can find it in the
    provider's console), else a SHA-256 digest prefix — deterministic, so a retry sends the same id.
    """
    if len(idempotency_key) <= max_length and _SAFE_REFERENCE.match(idempotency_key):
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:max_length]


def snippet(text: str, limit: int = 200) -> str:
    """A provider's reply shortened for a delivery log line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
