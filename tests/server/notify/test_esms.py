"""The eSMS adapter against a local server that speaks SendMultipleMessage_V4_post_json."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from server.notify.channel import Outcome, Outgoing
from server.notify.channels.esms import EsmsChannel, EsmsConfig
from server.notify.sms_text import count_segments, is_gsm7_basic
from tests.server.notify.servers import HttpServer, Reply, Request

PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
API_KEY, SECRET_KEY, BRANDNAME = "esms-api-key-123", "esms-secret-456", "THCS-LELOI"


def code(result: str, error: str, **extra: str) -> Reply:
    return Reply(body={"CodeResult": result, "CountRegenerate": 0, "ErrorMessage": error, **extra})


class FakeEsms:
    """eSMS as its developer documentation describes it: CodeResult 100 with an SMSID, 101 for
    wrong keys, 104 for an unknown brandname, 124 for a RequestId seen before, 99 for a blocked
    number, 103 when the balance is too low. ``script`` queues raw replies to give first."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.request_ids: set[str] = set()
        self.blocked = {"0987654321"}
        self.balance_ok = True
        self.script: list[Reply] = []

    def __call__(self, request: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        if request.method != "POST" or request.path != PATH:
            return Reply(404, "Endpoint not found.")
        body = request.json()
        if body["ApiKey"] != API_KEY or body["SecretKey"] != SECRET_KEY:
            return code("101", "Authorize Failed")
        if body["Brandname"] != BRANDNAME:
            return code("104", "Brand name code is not exist")
        if body.get("RequestId") in self.request_ids:
            return code("124", "Request exist 1", SendStatus="5")
        if body["Phone"] in self.blocked:
            return code("99", "Phone is blocked")
        if not self.balance_ok:
            return code("103", "Balance not enough to send message")
        self.request_ids.add(body.get("RequestId"))
        self.sent.append(body)
        return Reply(body={"CodeResult": "100", "CountRegenerate": 0, "SMSID": uuid.uuid4().hex})


@pytest.fixture
def esms(http_server: Callable) -> tuple[FakeEsms, HttpServer]:
    fake = FakeEsms()
    return fake, http_server(fake)


def channel(server: HttpServer, **overrides: object) -> EsmsChannel:
    settings = {
        "url": server.url + PATH,
        "api_key": API_KEY,
        "secret_key": SECRET_KEY,
        "brandname": BRANDNAME,
        "timeout_s": 0.5,
        **overrides,
    }
    return EsmsChannel("sms", EsmsConfig.model_validate(settings))


def test_accepted_sms_is_unaccented_gsm7_with_our_request_id(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    message = outgoing()
    with channel(server) as sms:
        delivery = sms.send(message)
    assert delivery.outcome is Outcome.ACCEPTED
    [sent] = fake.sent
    assert delivery.provider_id and len(delivery.provider_id) == 32
    assert sent["Phone"] == "0912345678"
    assert sent["Content"].startswith("THCS Le Loi: Nguyen Van An (6A1) da den truong luc 07:12")
    assert is_gsm7_basic(sent["Content"]) and sent["IsUnicode"] == "0"
    assert (sent["SmsType"], sent["Sandbox"]) == ("2", "0")
    assert sent["RequestId"] == message.idempotency_key


def test_unicode_gateway_gets_the_diacritics_when_they_fit(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    with channel(server, unicode=True, max_segments=2) as sms:
        assert sms.send(outgoing()).outcome is Outcome.ACCEPTED
    [sent] = fake.sent
    assert sent["Content"].startswith("Học sinh Nguyễn Văn An, lớp 6A1, đã đến trường")
    assert sent["IsUnicode"] == "1"


def test_unicode_falls_back_to_gsm7_when_the_full_text_is_too_long(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    with channel(server, unicode=True, max_segments=1) as sms:
        assert sms.send(outgoing()).outcome is Outcome.ACCEPTED
    [sent] = fake.sent
    assert sent["IsUnicode"] == "0" and count_segments(sent["Content"]).segments == 1


def test_a_retried_request_is_suppressed_by_request_id_and_counts_as_sent(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    message = outgoing()
    with channel(server) as sms:
        first, second = sms.send(message), sms.send(message)
        assert sms.deduplicates
    assert first.outcome is second.outcome is Outcome.ACCEPTED
    assert "already" in second.detail
    assert len(fake.sent) == 1


def test_server_error_is_temporary_then_the_retry_is_accepted(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    fake.script.append(Reply(503, "Service Unavailable", {"Retry-After": "30"}))
    with channel(server) as sms:
        first = sms.send(outgoing())
        second = sms.send(outgoing())
    assert first.outcome is Outcome.TEMPORARY and first.retry_after_s == 30
    assert second.outcome is Outcome.ACCEPTED and len(fake.sent) == 1


def test_invalid_request_reply_is_temporary(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    fake.script.append(Reply(body={"error": "Invalid request"}))
    with channel(server) as sms:
        assert sms.send(outgoing()).outcome is Outcome.TEMPORARY


def test_low_balance_is_temporary(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    fake.balance_ok = False
    with channel(server) as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.TEMPORARY and "103" in delivery.detail


@pytest.mark.parametrize(
    ("overrides", "phone", "code"),
    [
        ({"secret_key": "wrong"}, "0912345678", "101"),
        ({"brandname": "UNKNOWN"}, "0912345678", "104"),
        ({}, "0987654321", "99"),
    ],
)
def test_bad_keys_brandname_or_blocked_number_are_permanent(
    esms: tuple[FakeEsms, HttpServer],
    outgoing: Callable[..., Outgoing],
    overrides: dict,
    phone: str,
    code: str,
) -> None:
    fake, server = esms
    with channel(server, **overrides) as sms:
        delivery = sms.send(outgoing(phone=phone))
    assert delivery.outcome is Outcome.PERMANENT and delivery.detail.startswith(f"eSMS {code}:")
    assert not fake.sent


def test_a_number_that_is_not_a_mobile_never_reaches_the_gateway(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = esms
    with channel(server) as sms:
        delivery = sms.send(outgoing(phone="028 3812 3456"))
    assert delivery.outcome is Outcome.PERMANENT and "landline" in delivery.detail
    assert not server.requests


def test_timeout_is_temporary(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    fake, server = esms
    fake.script.append(Reply(stall=True))
    with channel(server, timeout_s=0.2) as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.TEMPORARY and "no reply" in delivery.detail


def test_unreachable_gateway_is_temporary(outgoing: Callable[..., Outgoing]) -> None:
    config = EsmsConfig(
        url="http://127.0.0.1:9/x", api_key=API_KEY, secret_key=SECRET_KEY, brandname=BRANDNAME
    )
    with EsmsChannel("sms", config) as sms:
        delivery = sms.send(outgoing())
    assert delivery.outcome is Outcome.TEMPORARY and "network error" in delivery.detail


def test_keys_never_show_in_settings_or_results(
    esms: tuple[FakeEsms, HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, server = esms
    with channel(server, secret_key="s3cr3t-wr0ng") as sms:
        delivery = sms.send(outgoing())
        shown = repr(sms.config) + str(sms.config.model_dump()) + repr(delivery)
    assert API_KEY not in shown and "s3cr3t-wr0ng" not in shown
