"""The SpeedSMS adapter against a local server that speaks ``POST /index.php/sms/send``."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from server.notify.channel import Outcome, Outgoing
from server.notify.channels.speedsms import SpeedSmsChannel, SpeedSmsConfig
from server.notify.sms_text import count_segments, is_gsm7_basic
from tests.server.notify.servers import HttpServer, Reply, Request

TOKEN = "speedsms-access-token-789"
PATH = "/index.php/sms/send"


class FakeSpeedSms:
    """SpeedSMS as its API samples show it: HTTP Basic ``<token>:x``; ``status``/``code``/``data``
    with a ``tranId`` on success; ``status: error`` with ``invalidPhone`` for numbers it cannot
    reach. It has no request id, so every request it accepts is a message sent."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.unreachable = {"0339999999"}
        self.script: list[Reply] = []
        self.next_tran_id = 123456

    def __call__(self, request: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        expected = "Basic " + base64.b64encode(f"{TOKEN}:x".encode()).decode()
        if request.headers.get("authorization") != expected:
            return Reply(401, {"status": "error", "code": "007", "message": "unauthorized"})
        if request.method != "POST" or request.path != PATH:
            return Reply(404, "Not Found")
        body = request.json()
        invalid = [phone for phone in body["to"] if phone in self.unreachable]
        if invalid:
            error = {"status": "error", "code": "101", "message": "invalid phone"}
            return Reply(body={**error, "invalidPhone": invalid})
        self.sent.append(body)
        self.next_tran_id += 1
        data = {"tranId": self.next_tran_id, "totalSMS": 1, "totalPrice": 250, "invalidPhone": []}
        return Reply(body={"status": "success", "code": "00", "data": data})


@pytest.fixture
def speedsms(http_server: Callable) -> tuple[FakeSpeedSms, HttpServer]:
    fake = FakeSpeedSms()
    return fake, http_server(fake)


def channel(server: HttpServer, **overrides: object) -> SpeedSmsChannel:
    settings = {"url": server.url + PATH, "access_token": TOKEN, "timeout_s": 0.5, **overrides}
    return SpeedSmsChannel("sms", SpeedSmsConfig.model_validate(settings))


def test_accepted_with_the_transaction_id(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    with channel(server, sms_type=3, sender="THCS-LELOI") as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.ACCEPTED and delivery.provider_id == "123457"
    [sent] = fake.sent
    assert sent["to"] == ["0912345678"]
    assert (sent["sms_type"], sent["sender"]) == (3, "THCS-LELOI")
    assert sent["content"].startswith("THCS Le Loi: Nguyen Van An (6A1) da den truong")
    assert is_gsm7_basic(sent["content"])


def test_a_long_message_is_shortened_to_the_school_budget(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    long_short_text = "Nguyen Van An " * 40
    with channel(server, max_segments=1) as sms:
        assert sms.send(outgoing(short_text=long_short_text)).outcome is Outcome.ACCEPTED
    [sent] = fake.sent
    assert count_segments(sent["content"]).segments == 1 and sent["content"].endswith("...")


def test_server_error_then_success(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    fake.script.append(Reply(500, "Internal Server Error"))
    with channel(server) as sms:
        assert sms.send(outgoing()).outcome is Outcome.TEMPORARY
        assert sms.send(outgoing()).outcome is Outcome.ACCEPTED


def test_rate_limit_is_temporary_with_retry_after(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    fake.script.append(Reply(429, "slow down", {"Retry-After": "7"}))
    with channel(server) as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.TEMPORARY and delivery.retry_after_s == 7


def test_an_unreachable_number_is_permanent(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    with channel(server) as sms:
        delivery = sms.send(outgoing(phone="+84 33 999 9999"))
    assert delivery.outcome is Outcome.PERMANENT and "0339999999" in delivery.detail
    assert not fake.sent


def test_a_wrong_token_is_permanent(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    with channel(server, access_token="not-the-token") as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and "credentials refused" in delivery.detail
    assert "not-the-token" not in repr(delivery) and not fake.sent


def test_a_reply_it_does_not_document_is_not_retried(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    fake.script.append(Reply(200, "<html>maintenance</html>"))
    with channel(server) as sms:
        assert sms.send(outgoing()).outcome is Outcome.PERMANENT


def test_timeout_is_temporary(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    fake.script.append(Reply(stall=True))
    with channel(server, timeout_s=0.2) as sms:
        assert sms.send(outgoing()).outcome is Outcome.TEMPORARY


def test_speedsms_has_no_request_id_so_a_repeat_is_a_second_sms(
    speedsms: tuple[FakeSpeedSms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = speedsms
    with channel(server) as sms:
        assert not sms.deduplicates
        sms.send(outgoing())
        sms.send(outgoing())
    assert len(fake.sent) == 2
