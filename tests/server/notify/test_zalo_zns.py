"""The Zalo ZNS adapter against a local server that speaks ``POST /message/template``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from server.notify.channel import Outcome, Outgoing
from server.notify.channels.zalo_zns import ZaloZnsChannel, ZaloZnsConfig
from server.notify.templates import MessageKind
from tests.server.notify.servers import HttpServer, Reply, Request

TOKEN = "oa-access-token-xyz"
ARRIVED_TEMPLATE = "301234"
TEMPLATES = {
    "arrived": {
        "template_id": ARRIVED_TEMPLATE,
        "params": {"ten_hoc_sinh": "student_name", "lop": "class_name", "gio": "time",
                   "ngay": "date", "cong": "gate"},
    },
}  # fmt: skip


class FakeZns:
    """Zalo's ZNS API as documented: the OA ``access_token`` header, ``phone`` as 84…,
    an approved ``template_id`` with all its ``template_data``; HTTP 200 always, ``error`` 0 with
    a ``msg_id``, or a negative code with Zalo's English message."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.no_zalo = {"84339999999"}
        self.script: list[Reply] = []

    def __call__(self, request: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        if request.headers.get("access_token") != TOKEN:
            return zalo(-124, "Access token invalid")
        body = request.json()
        if not body["phone"].startswith("84"):
            return zalo(-108, "Phone number invalid")
        if body["template_id"] != ARRIVED_TEMPLATE:
            return zalo(-109, "Template ID invalid")
        if set(body["template_data"]) != set(TEMPLATES["arrived"]["params"]):
            return zalo(-112, "Template data invalid")
        if body["phone"] in self.no_zalo:
            return zalo(-118, "Zalo account not existed")
        self.sent.append(body)
        data = {
            "msg_id": f"zns-{len(self.sent)}",
            "sent_time": "1764634320000",
            "quota": {"dailyQuota": "500", "remainingQuota": str(500 - len(self.sent))},
        }
        return Reply(body={"error": 0, "message": "Success", "data": data})


def zalo(error: int, message: str) -> Reply:
    return Reply(200, {"error": error, "message": message})


@pytest.fixture
def zns(http_server: Callable) -> tuple[FakeZns, HttpServer]:
    fake = FakeZns()
    return fake, http_server(fake)


def channel(server: HttpServer, **overrides: object) -> ZaloZnsChannel:
    settings = {
        "url": server.url + "/message/template",
        "access_token": TOKEN,
        "templates": TEMPLATES,
        "timeout_s": 0.5,
        **overrides,
    }
    return ZaloZnsChannel("zalo", ZaloZnsConfig.model_validate(settings))


def test_template_is_filled_from_the_message_fields(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = zns
    message = outgoing()
    with channel(server) as zalo_oa:
        delivery = zalo_oa.send(message)
    assert delivery.outcome is Outcome.ACCEPTED and delivery.provider_id == "zns-1"
    [sent] = fake.sent
    assert sent["phone"] == "84912345678" and sent["template_id"] == ARRIVED_TEMPLATE
    assert sent["template_data"] == {
        "ten_hoc_sinh": "Nguyễn Văn An",
        "lop": "6A1",
        "gio": "07:12",
        "ngay": "02/12/2026",
        "cong": "Cổng chính",
    }
    assert sent["tracking_id"] == message.idempotency_key


def test_a_kind_without_an_approved_template_fails_over_without_a_request(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = zns
    with channel(server) as zalo_oa:
        delivery = zalo_oa.send(outgoing(MessageKind.LATE))
    assert delivery.outcome is Outcome.PERMANENT and "no approved ZNS template" in delivery.detail
    assert not server.requests


def test_a_phone_without_zalo_is_permanent(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = zns
    with channel(server) as zalo_oa:
        delivery = zalo_oa.send(outgoing(phone="0339999999"))
    assert delivery.outcome is Outcome.PERMANENT
    assert delivery.detail == "Zalo ZNS -118: Zalo account not existed"


def test_an_invalid_access_token_is_permanent(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = zns
    with channel(server, access_token="expired") as zalo_oa:
        delivery = zalo_oa.send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and "-124" in delivery.detail


def test_zalo_unknown_error_is_temporary_and_the_retry_carries_the_same_tracking_id(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = zns
    fake.script.append(zalo(-100, "Unknown error"))
    message = outgoing()
    with channel(server) as zalo_oa:
        assert zalo_oa.send(message).outcome is Outcome.TEMPORARY
        assert zalo_oa.send(message).outcome is Outcome.ACCEPTED
        # Zalo documents tracking_id for reconciliation only, not for dropping repeats.
        assert not zalo_oa.deduplicates
    first, second = (request.json()["tracking_id"] for request in server.requests)
    assert first == second == message.idempotency_key


def test_gateway_error_then_success(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = zns
    fake.script.append(Reply(502, "Bad Gateway"))
    with channel(server) as zalo_oa:
        assert zalo_oa.send(outgoing()).outcome is Outcome.TEMPORARY
        assert zalo_oa.send(outgoing()).outcome is Outcome.ACCEPTED


def test_timeout_is_temporary(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = zns
    fake.script.append(Reply(stall=True))
    with channel(server, timeout_s=0.2) as zalo_oa:
        assert zalo_oa.send(outgoing()).outcome is Outcome.TEMPORARY


def test_a_long_tracking_id_is_hashed_to_the_same_value_each_time(
    zns: tuple[FakeZns, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = zns
    message = outgoing(idempotency_key="student-1042/2026-12-02/arrived/guardian-7/zalo" * 2)
    with channel(server) as zalo_oa:
        zalo_oa.send(message)
        zalo_oa.send(message)
    first, second = (request.json()["tracking_id"] for request in server.requests)
    assert first == second and len(first) <= 48


@pytest.mark.parametrize(
    ("templates", "complaint"),
    [
        ({"arrival": {"template_id": "1", "params": {}}}, "unknown message kind"),
        ({"arrived": {"template_id": "1", "params": {"x": "mother_name"}}}, "unknown field"),
    ],
)
def test_bad_template_maps_are_refused_when_the_settings_load(
    templates: dict, complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ZaloZnsConfig.model_validate({"access_token": TOKEN, "templates": templates})
