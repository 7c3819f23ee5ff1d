"""The configurable HTTP SMS gateway against local gateways of two different shapes."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from server.notify.channel import Outcome, Outgoing
from server.notify.channels.generic_sms import GenericSmsChannel, GenericSmsConfig
from tests.server.notify.servers import HttpServer, Reply, Request

KEY = "gw-key-abc"


class JsonGateway:
    """A gateway taking ``POST /v2/messages?sender=…`` with a bearer token and
    ``{"to": [...], "message": ..., "ref": ...}``, answering ``{"result": {"code", "id"}}``;
    code 0 is sent, 9 is "busy, try again", anything else an error. It drops a repeated ``ref``."""

    def __init__(self) -> None:
        self.sent: list[Request] = []
        self.refs: set[str] = set()
        self.script: list[Reply] = []

    def __call__(self, request: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return Reply(401, {"result": {"code": "auth"}})
        body = request.json()
        if body["ref"] in self.refs:
            return Reply(body={"result": {"code": "0", "id": "dup"}})
        self.refs.add(body["ref"])
        self.sent.append(request)
        return Reply(body={"result": {"code": "0", "id": f"m-{len(self.sent)}"}})


def json_settings(server: HttpServer, **overrides: object) -> dict:
    return {
        "kind": "generic_sms",
        "url": server.url + "/v2/messages?sender=THCS&to=$phone",
        "headers": {"Authorization": "Bearer $secret"},
        "secret": KEY,
        "body": {"to": ["$phone_e164"], "message": "$text", "ref": "$request_id", "flash": False},
        "deduplicates": True,
        "success": {
            "json_field": "result.code",
            "accepted_values": ["0"],
            "temporary_values": ["9"],
            "id_field": "result.id",
        },
        "timeout_s": 0.5,
        **overrides,
    }


@pytest.fixture
def gateway(http_server: Callable) -> tuple[JsonGateway, HttpServer]:
    fake = JsonGateway()
    return fake, http_server(fake)


def channel(settings: dict) -> GenericSmsChannel:
    return GenericSmsChannel("sms", GenericSmsConfig.model_validate(settings))


def test_json_gateway_gets_the_filled_templates_and_its_id_is_kept(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = gateway
    message = outgoing()
    with channel(json_settings(server)) as sms:
        delivery = sms.send(message)
        assert sms.deduplicates
    assert delivery.outcome is Outcome.ACCEPTED and delivery.provider_id == "m-1"
    [request] = fake.sent
    assert request.query == {"sender": ["THCS"], "to": ["84912345678"]}
    body = request.json()
    assert body["to"] == ["+84912345678"] and body["flash"] is False
    assert body["message"].startswith("THCS Le Loi: Nguyen Van An (6A1) da den truong")
    assert body["ref"] == message.idempotency_key


def test_text_in_the_url_is_url_encoded(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = gateway
    settings = json_settings(server, url=server.url + "/v2/messages?to=$phone&text=$text")
    with channel(settings) as sms:
        assert sms.send(outgoing(short_text="A&B=C #1")).outcome is Outcome.ACCEPTED
    assert fake.sent[0].query["text"] == ["A&B=C #1"]


def test_temporary_value_then_success(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = gateway
    fake.script.append(Reply(body={"result": {"code": "9"}}))
    with channel(json_settings(server)) as sms:
        assert sms.send(outgoing()).outcome is Outcome.TEMPORARY
        assert sms.send(outgoing()).outcome is Outcome.ACCEPTED


def test_error_value_is_permanent(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = gateway
    fake.script.append(Reply(body={"result": {"code": "17", "msg": "number not allowed"}}))
    with channel(json_settings(server)) as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and "'17'" in delivery.detail


def test_wrong_key_is_permanent(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = gateway
    with channel(json_settings(server, secret="other-key")) as sms:
        assert sms.send(outgoing()).outcome is Outcome.PERMANENT


def test_503_then_success(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = gateway
    fake.script.append(Reply(503))
    with channel(json_settings(server)) as sms:
        assert sms.send(outgoing()).outcome is Outcome.TEMPORARY
        assert sms.send(outgoing()).outcome is Outcome.ACCEPTED
    assert len(fake.sent) == 1


def test_timeout_is_temporary(
    gateway: tuple[JsonGateway, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = gateway
    fake.script.append(Reply(stall=True))
    with channel(json_settings(server, timeout_s=0.2)) as sms:
        assert sms.send(outgoing()).outcome is Outcome.TEMPORARY


def test_form_gateway_with_basic_auth_and_a_status_code_rule(
    http_server: Callable, outgoing: Callable[..., Outgoing]
) -> None:
    """A gateway that takes a form POST with HTTP Basic auth and answers 202 with no body."""
    received: list[Request] = []

    def gateway(request: Request) -> Reply:
        expected = "Basic " + base64.b64encode(b"school:pa55").decode()
        if request.headers.get("authorization") != expected:
            return Reply(401)
        received.append(request)
        return Reply(202)

    server = http_server(gateway)
    settings = {
        "url": server.url + "/send",
        "basic_auth": {"username": "school", "password": "pa55"},
        "body_format": "form",
        "body": {"dest": "$phone_national", "msg": "$text", "coding": "$unicode"},
        "unicode": True,
    }
    with channel(settings) as sms:
        delivery = sms.send(outgoing())
        assert not sms.deduplicates
    assert delivery.outcome is Outcome.ACCEPTED and delivery.provider_id is None
    form = received[0].form()
    assert form["dest"] == ["0912345678"] and form["coding"] == ["1"]
    assert form["msg"][0].startswith("Học sinh Nguyễn Văn An")


def test_a_non_success_status_without_json_rule_is_permanent(
    http_server: Callable, outgoing: Callable[..., Outgoing]
) -> None:
    server = http_server(lambda request: Reply(400, "bad number"))
    with channel({"url": server.url + "/send?to=$phone"}) as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and "bad number" in delivery.detail


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"url": "http://gw/send?to=$phone&who=$name"}, "unknown placeholder"),
        ({"url": "http://gw/send?key=$secret"}, "no secret is set"),
        ({"url": "http://gw/send", "body": {"cost": "5$"}}, "bad placeholder"),
        ({"url": "http://gw/send", "body_format": "form", "body": {"to": ["x"]}}, "flat"),
        ({"url": "http://gw/send", "success": {"json_field": "ok"}}, "accepted_values"),
    ],
)
def test_bad_templates_are_refused_when_the_settings_load(settings: dict, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        GenericSmsConfig.model_validate(settings)
