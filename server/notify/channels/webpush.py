"""Web Push to a guardian's browser or installed dashboard app, with VAPID (RFC 8292).

pywebpush encrypts the JSON payload ``{"title", "body", "url", "tag"}`` for the subscription
(aes128gcm, RFC 8291) and signs a VAPID JWT with the school's key. The push service's answer is
classified like any HTTP gateway's, except that 404/410 mean the subscription is gone for good
(the browser unsubscribed or the app was removed): the delivery says ``subscription_gone`` so the
caller deletes it. Two headers keep a retry from showing twice: ``Topic`` (RFC 8030) replaces a
message the push service still holds, and ``tag`` makes the service worker replace a shown one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Literal

import requests
from py_vapid import Vapid
from pydantic import Field, SecretStr, field_validator
from pywebpush import WebPushException, webpush

from server.notify.channel import Channel, ChannelConfig, Delivery, Outgoing, snippet
from server.notify.channels.http_gateway import classify_status

Urgency = Literal["very-low", "low", "normal", "high"]


class WebPushConfig(ChannelConfig):
    kind: Literal["webpush"] = "webpush"
    vapid_private_key: SecretStr = Field(
        description="The school's VAPID private key: raw P-256 scalar or DER, base64url."
    )
    vapid_subject: str = Field(
        description="Contact for push services: mailto:admin@school.edu.vn or an https URL."
    )
    ttl_s: int = Field(
        default=4 * 3600,
        ge=0,
        le=28 * 86400,
        description="How long a push service keeps a message for an offline device; an arrival "
        "notice hours late is noise.",
    )
    urgency: Urgency = "normal"
    high_urgency_kinds: frozenset[str] = Field(
        default=frozenset({"absent", "card_without_face"}),
        description="Kinds sent with Urgency: high, which wakes a sleeping phone.",
    )
    proxy_url: str | None = Field(
        default=None,
        pattern=r"^(https?|socks5h?)://\S+$",
        description="Proxy to reach push services through (http://host:port). The environment's "
        "HTTP(S)_PROXY is not read: see WebPushChannel.",
    )

    @field_validator("vapid_subject")
    @classmethod
    def _contact(cls, value: str) -> str:
        if not re.match(r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$", value):
            raise ValueError("vapid_subject must be mailto:address or an https:// URL")
        return value

    @field_validator("vapid_private_key")
    @classmethod
    def _loadable(cls, value: SecretStr) -> SecretStr:
        try:
            Vapid.from_string(value.get_secret_value())
        except Exception:
            raise ValueError("vapid_private_key is not a base64url P-256 key") from None
        return value


def push_topic(idempotency_key: str) -> str:
    """An RFC 8030 ``Topic`` (at most 32 base64url characters) for one outbox row."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


class WebPushChannel(Channel):
    kind = "webpush"
    address = "push"

    def __init__(self, name: str, config: WebPushConfig) -> None:
        super().__init__(name)
        self.config = config
        self._vapid = Vapid.from_string(config.vapid_private_key.get_secret_value())
        self._session = requests.Session()
        # requests reads the proxy variables afresh on every request by walking all of
        # os.environ (twice); at a morning rush that was a third of the dispatcher's CPU. So
        # the proxy, if any, is configured once, explicitly.
        self._session.trust_env = False
        if config.proxy_url:
            self._session.proxies = {"http": config.proxy_url, "https": config.proxy_url}

    def send(self, message: Outgoing) -> Delivery:
        subscription = message.push
        if subscription is None:
            return Delivery.permanent("the guardian has no push subscription")
        payload = {
            "title": message.subject,
            "body": message.text,
            "url": message.url,
            "tag": message.idempotency_key,
        }
        urgency = "high" if message.kind in self.config.high_urgency_kinds else self.config.urgency
        try:
            response = webpush(
                subscription_info={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                data=json.dumps(payload, ensure_ascii=False),
                vapid_private_key=self._vapid,
                # webpush() fills in "aud" and "exp" in place: a fresh dict per message.
                vapid_claims={"sub": self.config.vapid_subject},
                ttl=self.config.ttl_s,
                headers={"Urgency": urgency, "Topic": push_topic(message.idempotency_key)},
                timeout=self.config.timeout_s,
                requests_session=self._session,
            )
        except requests.Timeout:
            return Delivery.temporary(f"no reply within {self.config.timeout_s:g} s")
        except requests.RequestException as exc:
            return Delivery.temporary(f"network error: {type(exc).__name__}: {exc}")
        except WebPushException as exc:
            return self._refused(exc)
        except ValueError as exc:
            # Keys that do not decode or are not a P-256 point: this subscription can never work.
            return Delivery.permanent(f"unusable subscription: {exc}", subscription_gone=True)
        return Delivery.accepted(response.headers.get("Location"), f"HTTP {response.status_code}")

    @staticmethod
    def _refused(exc: WebPushException) -> Delivery:
        status = exc.status_code
        if status is None:
            # pywebpush could not even build the request: the stored keys are unusable.
            return Delivery.permanent(
                f"unusable subscription: {exc.message}", subscription_gone=True
            )
        body = getattr(exc.response, "text", "") or ""
        if status in (404, 410):
            return Delivery.permanent(f"subscription gone (HTTP {status})", subscription_gone=True)
        verdict = classify_status(status, exc.retry_after, body)
        return verdict or Delivery.permanent(f"push service HTTP {status}: {snippet(body)}")

    def close(self) -> None:
        self._session.close()
