"""The e-mail adapter against aiosmtpd on 127.0.0.1, over STARTTLS and over implicit TLS, with
a throwaway certificate; the received bytes are parsed back to check what a parent would see."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from broker.managed import free_port
from server.notify.channel import Outcome, Outgoing
from server.notify.channels.email import EmailChannel, EmailConfig, message_id
from tests.server.notify.servers import Tls

USER, PASSWORD = "notify@thcs-leloi.edu.vn", "smtp-pa55"


@dataclass
class Mailbox:
    """What the SMTP server received, and how it should answer the next message."""

    messages: list[tuple[Envelope, bool]] = field(default_factory=list)
    refuse_recipients: set[str] = field(default_factory=set)
    data_reply: str | None = None

    async def handle_RCPT(
        self, server: object, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address in self.refuse_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        over_tls = server.transport.get_extra_info("ssl_object") is not None  # type: ignore[attr-defined]
        self.messages.append((envelope, over_tls))
        return "250 2.0.0 Ok: queued"


def parse(envelope: Envelope) -> EmailMessage:
    """The message as the parent's mail client reads it."""
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def authenticate(
    server: object, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers a refusal with 535 itself.
    return AuthResult(success=ok, handled=False)


@pytest.fixture(params=["starttls", "ssl"])
def smtp_server(request: pytest.FixtureRequest, tls: Tls) -> Iterator[tuple[Mailbox, EmailConfig]]:
    """A submission server in the chosen security mode and settings that reach it."""
    mailbox = Mailbox()
    port = free_port()
    common = {"hostname": "127.0.0.1", "port": port, "authenticator": authenticate}
    if request.param == "starttls":
        controller = Controller(
            mailbox, tls_context=tls.server_context(), require_starttls=True, **common
        )
    else:
        controller = Controller(
            mailbox, ssl_context=tls.server_context(), auth_require_tls=False, **common
        )
    controller.start()
    config = EmailConfig(
        host="127.0.0.1",
        port=port,
        security=request.param,
        username=USER,
        password=PASSWORD,
        from_address="notify@thcs-leloi.edu.vn",
        from_name="Trường THCS Lê Lợi",
        ca_file=tls.ca_file,
        timeout_s=2,
    )
    yield mailbox, config
    controller.stop()


def test_parent_receives_utf8_subject_body_and_our_headers(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    message = outgoing()
    delivery = EmailChannel("email", config).send(message)
    assert delivery.outcome is Outcome.ACCEPTED
    [(envelope, over_tls)] = mailbox.messages
    assert over_tls and envelope.rcpt_tos == ["phu.huynh@example.vn"]
    mail = parse(envelope)
    assert mail["Subject"] == "Nguyễn Văn An đã đến trường"
    assert mail["From"].addresses[0].display_name == "Trường THCS Lê Lợi"
    body = mail.get_content()
    assert body.startswith("Học sinh Nguyễn Văn An, lớp 6A1, đã đến trường lúc 07:12 ngày 02/12")
    assert "Ngừng nhận thông báo qua kênh này: https://school.example.vn/opt-out/abc123" in body
    assert mail["List-Unsubscribe"] == "<https://school.example.vn/opt-out/abc123>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == message_id(message.idempotency_key, "thcs-leloi.edu.vn")
    assert delivery.provider_id == mail["Message-ID"]


def test_the_same_outbox_row_always_gets_the_same_message_id(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    channel = EmailChannel("email", config)
    channel.send(outgoing())
    channel.send(outgoing())
    channel.send(outgoing(idempotency_key="another-row"))
    ids = [parse(envelope)["Message-ID"] for envelope, _ in mailbox.messages]
    assert ids[0] == ids[1] != ids[2]


def test_wrong_password_is_permanent(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    config = EmailConfig.model_validate({**config.model_dump(), "password": "wrong"})
    delivery = EmailChannel("email", config).send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and delivery.detail.startswith("SMTP 535")
    assert not mailbox.messages


def test_unknown_recipient_is_permanent(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    mailbox.refuse_recipients.add("phu.huynh@example.vn")
    delivery = EmailChannel("email", config).send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and delivery.detail.startswith("SMTP 550")


def test_a_4xx_reply_is_temporary_then_the_retry_is_accepted(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    mailbox.data_reply = "451 4.3.0 Mail server temporarily rejected message"
    channel = EmailChannel("email", config)
    first = channel.send(outgoing())
    mailbox.data_reply = None
    second = channel.send(outgoing())
    assert first.outcome is Outcome.TEMPORARY and first.detail.startswith("SMTP 451")
    assert second.outcome is Outcome.ACCEPTED and len(mailbox.messages) == 1


def test_a_certificate_we_do_not_trust_is_permanent(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    delivery = EmailChannel("email", config.model_copy(update={"ca_file": None})).send(outgoing())
    assert delivery.outcome is Outcome.PERMANENT and "not trusted" in delivery.detail
    assert not mailbox.messages


def test_no_server_listening_is_temporary(outgoing: Callable[..., Outgoing]) -> None:
    config = EmailConfig(host="127.0.0.1", port=free_port(), from_address="a@b.vn", timeout_s=1)
    delivery = EmailChannel("email", config).send(outgoing())
    assert delivery.outcome is Outcome.TEMPORARY


def test_english_footer_and_no_unsubscribe_header_without_a_link(
    smtp_server: tuple[Mailbox, EmailConfig], outgoing: Callable[..., Outgoing]
) -> None:
    mailbox, config = smtp_server
    EmailChannel("email", config).send(outgoing(locale="en", opt_out_url=None))
    mail = parse(mailbox.messages[0][0])
    assert mail["Subject"] == "Nguyễn Văn An arrived at school"
    assert "List-Unsubscribe" not in mail and "Stop" not in mail.get_content()
