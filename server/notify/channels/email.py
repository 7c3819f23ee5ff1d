"""E-mail over SMTP with STARTTLS (port 587) or implicit TLS (port 465); never in clear text.

The ``Message-ID`` is derived from the idempotency key, so a message sent again after a lost reply
carries the same id and mail systems that deduplicate on it show it once. ``List-Unsubscribe``
(with RFC 8058 one-click) carries the guardian's opt-out link, which mail clients show as an
"Unsubscribe" button; the same link closes the text. SMTP reply codes decide the outcome: 4xx is
temporary, 5xx permanent, as RFC 5321 intends.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from server.notify.channel import Channel, ChannelConfig, Delivery, Outgoing
from server.notify.messages import opt_out_line


class EmailConfig(ChannelConfig):
    kind: Literal["email"] = "email"
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    from_name: str = ""
    ca_file: Path | None = Field(
        default=None, description="CA bundle for a server with a private certificate."
    )

    @field_validator("from_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.count("@") != 1 or not all(value.split("@")):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value


def message_id(idempotency_key: str, domain: str) -> str:
    """A Message-ID that is the same for every attempt of one outbox row and reveals nothing
    about the child (the key is hashed)."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


class EmailChannel(Channel):
    kind = "email"
    address = "email"

    def __init__(self, name: str, config: EmailConfig) -> None:
        super().__init__(name)
        self.config = config
        self._tls = ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file else None
        )

    def compose(self, message: Outgoing) -> EmailMessage:
        """The e-mail for ``message``: UTF-8 text, encoded headers, our Message-ID."""
        config = self.config
        mail = EmailMessage()
        mail["From"] = Address(config.from_name, addr_spec=config.from_address)
        mail["To"] = message.email
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = message_id(message.idempotency_key, config.from_address.split("@")[1])
        text = message.text
        if message.opt_out_url:
            mail["List-Unsubscribe"] = f"<{message.opt_out_url}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            text += "\n\n-- \n" + opt_out_line(message.locale, message.opt_out_url)
        mail.set_content(text, charset="utf-8")
        return mail

    def send(self, message: Outgoing) -> Delivery:
        if not message.email:
            return Delivery.permanent("the guardian has no e-mail address")
        mail = self.compose(message)
        try:
            with self._connect() as smtp:
                if self.config.username and self.config.password:
                    smtp.login(self.config.username, self.config.password.get_secret_value())
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            return _by_code(*next(iter(exc.recipients.values())))
        except smtplib.SMTPResponseException as exc:
            return _by_code(exc.smtp_code, exc.smtp_error)
        except smtplib.SMTPNotSupportedError as exc:
            return Delivery.permanent(f"SMTP server: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return Delivery.permanent(f"SMTP server certificate not trusted: {exc.verify_message}")
        except TimeoutError:
            return Delivery.temporary(f"no reply within {self.config.timeout_s:g} s")
        except (OSError, smtplib.SMTPException) as exc:
            return Delivery.temporary(f"SMTP connection failed: {type(exc).__name__}: {exc}")
        if refused:
            return _by_code(*next(iter(refused.values())))
        return Delivery.accepted(mail["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.security == "ssl":
            return smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=self._tls
            )
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        try:
            smtp.starttls(context=self._tls)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _by_code(code: int, reply: bytes | str) -> Delivery:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    detail = f"SMTP {code}: {text}"
    return Delivery.temporary(detail) if 400 <= code < 500 else Delivery.permanent(detail)
