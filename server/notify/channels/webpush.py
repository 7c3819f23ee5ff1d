"""Web Push to a guardian's browser or installed dashboard app, with VAPID (RFC 8292).

pywebpush encrypts the JSON payload ``{"title", "body", "url", "tag"}`` for the subscription
(aes128gcm, RFC 8291) and py_vapid signs the VAPID JWT with the school's key. The push service's
answer is classified like any HTTP gateway's, except that 404/410 mean the subscription is gone
for good (the browser unsubscribed or the app was removed): the delivery says
``subscription_gone`` so the caller deletes it. Two headers keep a retry from showing twice:
``Topic`` (RFC 8030) replaces a message the push service still holds, and ``tag`` makes the
service worker replace a shown one.

Push is the channel of the morning rush (one message per arrival), so the request itself is
made with urllib3 over kept-alive connections rather than through pywebpush's requests call:
requests costs about twice urllib3's CPU per message, and a JWT is signed once per push service
and reused until near its expiry instead of once per message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from typing import Literal
from urllib.parse import urlsplit

import urllib3
from py_vapid import Vapid
from pydantic import Field, SecretStr, field_validator
from pywebpush import WebPusher, WebPushException

from server.notify.channel import Channel, ChannelConfig, Delivery, Outgoing, snippet
from server.notify.channels.http_gateway import classify_status

Urgency = Literal["very-low", "low", "normal", "high"]
POOL_SIZE = 64
"""Kept-alive connections per push service: at least the dispatcher's send threads."""
JWT_LIFETIME_S = 12 * 3600
"""A VAPID JWT's life (push services refuse more than 24 h)."""
JWT_RENEW_S = 3600
"""Sign a new JWT once the cached one has less than this left."""


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
        pattern=r"^https?://\S+$",
        description="HTTP proxy to reach push services through (http://host:port); the "
        "environment's HTTP(S)_PROXY is not read.",
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
        self._jwts: dict[str, tuple[float, dict[str, str]]] = {}
        self._jwt_lock = threading.Lock()
        # The environment's proxy variables are not read: a proxy, if any, is configured.
        self._http: urllib3.PoolManager = (
            urllib3.ProxyManager(config.proxy_url, maxsize=POOL_SIZE)
            if config.proxy_url
            else urllib3.PoolManager(maxsize=POOL_SIZE)
        )

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
        info = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            body = WebPusher(info).encode(json.dumps(payload, ensure_ascii=False).encode())["body"]
            origin = _origin(subscription.endpoint)
        except (WebPushException, ValueError, TypeError) as exc:
            # Keys that do not decode or are not a P-256 point: this subscription can never work.
            return Delivery.permanent(f"unusable subscription: {exc}", subscription_gone=True)
        headers = {
            "Content-Encoding": "aes128gcm",
            "TTL": str(self.config.ttl_s),
            "Urgency": urgency,
            "Topic": push_topic(message.idempotency_key),
            **self._authorization(origin),
        }
        try:
            response = self._http.request(
                "POST",
                subscription.endpoint,
                body=body,
                headers=headers,
                timeout=self.config.timeout_s,
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.TimeoutError:
            return Delivery.temporary(f"no reply within {self.config.timeout_s:g} s")
        except urllib3.exceptions.HTTPError as exc:
            return Delivery.temporary(f"network error: {type(exc).__name__}: {exc}")
        if response.status in (200, 201, 202):
            return Delivery.accepted(response.headers.get("Location"), f"HTTP {response.status}")
        return self._refused(response)

    def _authorization(self, origin: str) -> dict[str, str]:
        """The VAPID ``Authorization`` header for ``origin``: one JWT per push service, signed
        again once less than :data:`JWT_RENEW_S` of its life is left."""
        now = time.time()
        with self._jwt_lock:
            cached = self._jwts.get(origin)
            if cached is None or cached[0] - now < JWT_RENEW_S:
                expires = now + JWT_LIFETIME_S
                claims = {"sub": self.config.vapid_subject, "aud": origin, "exp": int(expires)}
                cached = self._jwts[origin] = (expires, self._vapid.sign(claims))
            return cached[1]

    @staticmethod
    def _refused(response: urllib3.BaseHTTPResponse) -> Delivery:
        status = response.status
        body = response.data.decode("utf-8", "replace")
        if status in (404, 410):
            return Delivery.permanent(f"subscription gone (HTTP {status})", subscription_gone=True)
        verdict = classify_status(status, response.headers.get("Retry-After"), body)
        return verdict or Delivery.permanent(f"push service HTTP {status}: {snippet(body)}")

    def close(self) -> None:
        self._http.clear()


def _origin(endpoint: str) -> str:
    """The push service's origin, the JWT's audience (RFC 8292 §2)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) endpoint: {endpoint[:80]!r}")
    return f"{parts.scheme}://{parts.netloc}"
