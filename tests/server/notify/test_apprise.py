"""The Apprise adapter through Apprise's own json:// and form:// services to a local server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from server.notify.channel import Outcome, Outgoing
from server.notify.channels.apprise_channel import AppriseChannel, AppriseConfig
from tests.server.notify.servers import HttpServer, Reply, Request


def channel(url: str) -> AppriseChannel:
    return AppriseChannel("chat", AppriseConfig(url=url, timeout_s=2))


@pytest.fixture
def hook(http_server: Callable) -> tuple[list[Request], list[Reply], HttpServer]:
    """A webhook that records requests and answers from a script (200 when it is empty)."""
    received: list[Request] = []
    script: list[Reply] = []

    def answer(request: Request) -> Reply:
        received.append(request)
        return script.pop(0) if script else Reply(200, "ok")

    return received, script, http_server(answer)


def test_json_webhook_gets_title_and_vietnamese_text_at_the_guardians_target(
    hook: tuple[list[Request], list[Reply], HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    received, _, server = hook
    url = f"json://127.0.0.1:{server.port}/parents/$target"
    delivery = channel(url).send(outgoing(apprise_target="guardian-7"))
    assert delivery.outcome is Outcome.ACCEPTED
    [request] = received
    assert request.path == "/parents/guardian-7"
    payload = request.json()
    assert payload["title"] == "Nguyễn Văn An đã đến trường"
    assert payload["message"] == (
        "Học sinh Nguyễn Văn An, lớp 6A1, đã đến trường lúc 07:12 ngày 02/12/2026 tại Cổng chính."
        "\nhttps://school.example.vn/students/1042"
    )


def test_form_webhook_with_a_whole_url_as_target(
    hook: tuple[list[Request], list[Reply], HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    received, _, server = hook
    target = f"form://127.0.0.1:{server.port}/my-family-hook"
    assert channel("$target").send(outgoing(apprise_target=target)).outcome is Outcome.ACCEPTED
    assert received[0].path == "/my-family-hook"
    assert received[0].form()["title"] == ["Nguyễn Văn An đã đến trường"]


def test_a_failing_service_is_temporary_then_accepted(
    hook: tuple[list[Request], list[Reply], HttpServer], outgoing: Callable[..., Outgoing]
) -> None:
    _, script, server = hook
    script.append(Reply(500, "down"))
    apprise_channel = channel(f"json://127.0.0.1:{server.port}/p/$target")
    first = apprise_channel.send(outgoing(apprise_target="g7"))
    second = apprise_channel.send(outgoing(apprise_target="g7"))
    assert first.outcome is Outcome.TEMPORARY and "500" in first.detail
    assert second.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize(
    ("target", "complaint"),
    [
        (None, "no destination"),
        ("g7, mailto://someone@example.com", "space or a comma"),
        ("nosuchscheme://x", "does not recognise"),
    ],
)
def test_a_target_that_cannot_be_one_guardians_destination_is_permanent(
    outgoing: Callable[..., Outgoing], target: str | None, complaint: str
) -> None:
    delivery = channel("$target").send(outgoing(apprise_target=target))
    assert delivery.outcome is Outcome.PERMANENT and complaint in delivery.detail


def test_a_url_without_target_is_refused_so_children_are_never_mixed() -> None:
    with pytest.raises(ValidationError, match=r"\$target"):
        AppriseConfig(url="tgram://123456:ABCDEF/-100123")


def test_the_url_stays_secret() -> None:
    config = AppriseConfig(url="tgram://123456:BOT-SECRET/$target")
    assert "BOT-SECRET" not in repr(config) and "BOT-SECRET" not in str(config.model_dump())
