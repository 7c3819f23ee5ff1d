"""Web Push against a local push service that checks the VAPID JWT and decrypts the payload with
the subscription's private key (http_ece, aes128gcm), as a browser's push service and the browser
itself would."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from py_vapid.jwt import decode as decode_jwt
from pydantic import ValidationError

from server.notify.channel import Outcome, Outgoing, PushSubscription
from server.notify.channels.webpush import WebPushChannel, WebPushConfig, push_topic
from server.notify.templates import MessageKind
from tests.server.notify.servers import HttpServer, Reply, Request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass
class Browser:
    """A subscribed browser: its private key and auth secret stay here, like in a real one."""

    key: ec.EllipticCurvePrivateKey
    auth: bytes

    def subscription(self, endpoint: str) -> PushSubscription:
        return PushSubscription(endpoint, b64url(public_point(self.key)), b64url(self.auth))

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


class FakePushService:
    """RFC 8030/8292 as a push service applies them: a ``vapid t=…,k=…`` Authorization whose JWT
    verifies with ``k`` and names this origin; TTL, Urgency and Topic headers; 201 Created with
    the message's Location. ``script`` queues other answers (410, 500, a stall)."""

    def __init__(self, browser: Browser, vapid_public: str) -> None:
        self.browser = browser
        self.vapid_public = vapid_public
        self.origin = ""
        self.delivered: list[tuple[Request, dict, dict]] = []
        self.script: list[Reply] = []

    def __call__(self, request: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        scheme, _, params = request.headers["authorization"].partition(" ")
        parts = dict(item.split("=", 1) for item in params.split(","))
        if scheme != "vapid" or parts["k"] != self.vapid_public:
            return Reply(403, "wrong VAPID key")
        claims = decode_jwt(parts["t"], parts["k"])
        if claims["aud"] != self.origin or claims["exp"] < time.time():
            return Reply(403, "bad JWT claims")
        if request.headers.get("content-encoding") != "aes128gcm":
            return Reply(415)
        payload = self.browser.decrypt(request.body)
        self.delivered.append((request, claims, payload))
        return Reply(201, headers={"Location": f"{self.origin}/m/{len(self.delivered)}"})


@pytest.fixture
def vapid() -> tuple[str, str]:
    """A school's VAPID key pair: (private key as base64url raw, public key as base64url)."""
    key = Vapid()
    key.generate_keys()
    raw = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(raw), b64url(public_point(key.private_key))


@pytest.fixture
def browser() -> Browser:
    return Browser(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))


@pytest.fixture
def push_service(
    http_server: Callable, browser: Browser, vapid: tuple[str, str]
) -> tuple[FakePushService, HttpServer]:
    fake = FakePushService(browser, vapid[1])
    server = http_server(fake)
    fake.origin = server.url
    return fake, server


def channel(vapid: tuple[str, str], **overrides: object) -> WebPushChannel:
    settings = {
        "vapid_private_key": vapid[0],
        "vapid_subject": "mailto:admin@thcs-leloi.edu.vn",
        "timeout_s": 0.5,
        **overrides,
    }
    return WebPushChannel("push", WebPushConfig.model_validate(settings))


def test_push_service_decrypts_the_vietnamese_text_and_verifies_vapid(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
) -> None:
    fake, server = push_service
    message = outgoing(push=browser.subscription(server.url + "/push/abc"))
    with channel(vapid, ttl_s=600) as push:
        delivery = push.send(message)
    assert delivery.outcome is Outcome.ACCEPTED
    assert delivery.provider_id == f"{server.url}/m/1"
    [(request, claims, payload)] = fake.delivered
    assert payload == {
        "title": "Nguyễn Văn An đã đến trường",
        "body": "Học sinh Nguyễn Văn An, lớp 6A1, đã đến trường lúc 07:12 ngày 02/12/2026 "
        "tại Cổng chính.",
        "url": "https://school.example.vn/students/1042",
        "tag": message.idempotency_key,
    }
    assert claims["sub"] == "mailto:admin@thcs-leloi.edu.vn"
    assert request.path == "/push/abc"
    assert request.headers["ttl"] == "600" and request.headers["urgency"] == "normal"
    assert request.headers["topic"] == push_topic(message.idempotency_key)


def test_absence_is_sent_with_high_urgency(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
) -> None:
    fake, server = push_service
    message = outgoing(MessageKind.ABSENT, push=browser.subscription(server.url + "/push/abc"))
    with channel(vapid) as push:
        assert push.send(message).outcome is Outcome.ACCEPTED
    assert fake.delivered[0][0].headers["urgency"] == "high"
    assert "vắng mặt" in fake.delivered[0][2]["title"]


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_permanent_and_flagged(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
    status: int,
) -> None:
    fake, server = push_service
    fake.script.append(Reply(status, "push subscription has unsubscribed or expired"))
    with channel(vapid) as push:
        delivery = push.send(outgoing(push=browser.subscription(server.url + "/push/abc")))
    assert delivery.outcome is Outcome.PERMANENT and delivery.subscription_gone


def test_server_error_then_created(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
) -> None:
    fake, server = push_service
    fake.script.append(Reply(500, "oops"))
    message = outgoing(push=browser.subscription(server.url + "/push/abc"))
    with channel(vapid) as push:
        first, second = push.send(message), push.send(message)
    assert first.outcome is Outcome.TEMPORARY and not first.subscription_gone
    assert second.outcome is Outcome.ACCEPTED and len(fake.delivered) == 1


def test_too_many_requests_honours_retry_after(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
) -> None:
    fake, server = push_service
    fake.script.append(Reply(429, headers={"Retry-After": "120"}))
    with channel(vapid) as push:
        delivery = push.send(outgoing(push=browser.subscription(server.url + "/push/abc")))
    assert delivery.outcome is Outcome.TEMPORARY and delivery.retry_after_s == 120


def test_a_refused_vapid_key_is_permanent_but_keeps_the_subscription(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    outgoing: Callable[..., Outgoing],
) -> None:
    _, server = push_service
    other_school = Vapid()
    other_school.generate_keys()
    raw = other_school.private_key.private_numbers().private_value.to_bytes(32, "big")
    with channel((b64url(raw), "")) as push:
        delivery = push.send(outgoing(push=browser.subscription(server.url + "/push/abc")))
    assert delivery.outcome is Outcome.PERMANENT and not delivery.subscription_gone


def test_timeout_is_temporary(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
) -> None:
    fake, server = push_service
    fake.script.append(Reply(stall=True))
    with channel(vapid, timeout_s=0.2) as push:
        delivery = push.send(outgoing(push=browser.subscription(server.url + "/push/abc")))
    assert delivery.outcome is Outcome.TEMPORARY and "no reply" in delivery.detail


def test_subscription_keys_that_cannot_work_are_gone(
    vapid: tuple[str, str], outgoing: Callable[..., Outgoing]
) -> None:
    broken = PushSubscription("http://127.0.0.1:9/push/x", b64url(b"\x04" + b"\x01" * 64), "AAAA")
    with channel(vapid) as push:
        delivery = push.send(outgoing(push=broken))
    assert delivery.outcome is Outcome.PERMANENT and delivery.subscription_gone


def test_no_subscription_is_permanent(
    vapid: tuple[str, str], outgoing: Callable[..., Outgoing]
) -> None:
    with channel(vapid) as push:
        assert push.send(outgoing()).outcome is Outcome.PERMANENT


@pytest.mark.parametrize(
    ("field", "value"),
    [("vapid_private_key", "not a key"), ("vapid_subject", "admin@school.vn")],
)
def test_bad_vapid_settings_are_refused(vapid: tuple[str, str], field: str, value: str) -> None:
    settings = {"vapid_private_key": vapid[0], "vapid_subject": "mailto:a@b.vn", field: value}
    with pytest.raises(ValidationError, match=field):
        WebPushConfig.model_validate(settings)


def test_a_configured_proxy_carries_the_request(
    http_server: Callable,
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
) -> None:
    """The endpoint's host does not resolve: only the proxy can have delivered it."""
    fake = FakePushService(browser, vapid[1])
    fake.origin = "http://push.invalid"
    proxy = http_server(fake)
    message = outgoing(push=browser.subscription("http://push.invalid/push/abc"))
    with channel(vapid, proxy_url=proxy.url) as push:
        delivery = push.send(message)
    assert delivery.outcome is Outcome.ACCEPTED
    assert [request.path for request in proxy.requests] == ["/push/abc"]
    assert fake.delivered[0][2]["tag"] == message.idempotency_key


def test_the_environment_proxy_is_not_used(
    push_service: tuple[FakePushService, HttpServer],
    browser: Browser,
    vapid: tuple[str, str],
    outgoing: Callable[..., Outgoing],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing listens on port 9: had the variable been read, the send would fail."""
    fake, server = push_service
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with channel(vapid) as push:
        delivery = push.send(outgoing(push=browser.subscription(server.url + "/push/abc")))
    assert delivery.outcome is Outcome.ACCEPTED and len(fake.delivered) == 1


def test_a_proxy_url_must_be_a_url(vapid: tuple[str, str]) -> None:
    with pytest.raises(ValidationError, match="proxy_url"):
        channel(vapid, proxy_url="127.0.0.1:3128")
