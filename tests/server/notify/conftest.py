"""Fixtures for the notification tests: local servers, a TLS certificate, a rendered message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from broker.pki import create_ca, issue_server_cert
from server.notify.channel import Outgoing
from server.notify.messages import MessageContext, render
from server.notify.templates import MessageKind
from tests.server.notify.servers import Handler, HttpServer, Tls

ARRIVED_AT = datetime(2026, 12, 2, 0, 12, tzinfo=UTC)  # 07:12 in Hà Nội


@pytest.fixture
def http_server() -> Iterator[Callable[[Handler], HttpServer]]:
    """Start servers with ``http_server(handler)``; all are stopped after the test."""
    started: list[HttpServer] = []

    def start(handler: Handler) -> HttpServer:
        started.append(HttpServer(handler))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("tls")
    ca = create_ca("notify tests CA")
    server = issue_server_cert(ca, ["127.0.0.1", "localhost"])
    ca.write(folder / "ca.pem", folder / "ca.key")
    server.write(folder / "server.pem", folder / "server.key")
    return Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")


@pytest.fixture
def outgoing() -> Callable[..., Outgoing]:
    """``outgoing(kind, locale, **overrides)``: a rendered message about Nguyễn Văn An of 6A1,
    07:12 on 02/12/2026 at Cổng chính, for one guardian with every kind of address."""

    def make(
        kind: MessageKind = MessageKind.ARRIVED, locale: str = "vi", **overrides: Any
    ) -> Outgoing:
        context = MessageContext(
            student_name="Nguyễn Văn An",
            class_name="6A1",
            at=ARRIVED_AT,
            gate="Cổng chính",
            school_name="THCS Lê Lợi",
        )
        message = render(kind, locale, context)  # type: ignore[arg-type]
        values: dict[str, Any] = {
            "idempotency_key": f"st-1042:2026-12-02:{kind.value}:g-7",
            "kind": kind.value,
            "subject": message.subject,
            "text": message.text,
            "short_text": message.short_text_unaccented,
            "locale": locale,
            "fields": message.fields,
            "phone": "0912 345 678",
            "email": "phu.huynh@example.vn",
            "url": "https://school.example.vn/students/1042",
            "opt_out_url": "https://school.example.vn/opt-out/abc123",
        }
        values.update(overrides)
        return Outgoing(**values)

    return make
