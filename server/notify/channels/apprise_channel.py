"""Any service Apprise speaks (Telegram, ntfy, Matrix, Discord, JSON/form webhooks…), for schools
whose parents gather somewhere we have no adapter for.

The school configures a URL template holding its credentials (a secret) and ``$target``, which is
filled with the guardian's own destination — ``tgram://BOT_TOKEN/$target`` with a chat id,
``ntfys://ntfy.sh/$target`` with a topic, or just ``$target`` when guardians give a whole Apprise
URL. A template without ``$target`` would send every child's news to one place, so it is refused.

Apprise reports success, failure or timeout but not why a service refused, so a failed send is
temporary (the dispatcher's retry limit ends it); a guardian's target that does not make a valid
URL is permanent. The module is not called ``apprise.py`` so it never shadows the library.
"""

from __future__ import annotations

from string import Template
from typing import Literal

import apprise
from pydantic import SecretStr, field_validator

from server.notify.channel import Channel, ChannelConfig, Delivery, Outgoing, snippet


class AppriseConfig(ChannelConfig):
    kind: Literal["apprise"] = "apprise"
    url: SecretStr

    @field_validator("url")
    @classmethod
    def _per_guardian(cls, value: SecretStr) -> SecretStr:
        template = Template(value.get_secret_value())
        if not template.is_valid() or set(template.get_identifiers()) != {"target"}:
            raise ValueError("the Apprise URL template must use $target (and no other $name)")
        return value


class AppriseChannel(Channel):
    kind = "apprise"
    address = "apprise"

    def __init__(self, name: str, config: AppriseConfig) -> None:
        super().__init__(name)
        self.config = config
        self._template = Template(config.url.get_secret_value())

    def send(self, message: Outgoing) -> Delivery:
        target = message.apprise_target
        if not target:
            return Delivery.permanent("the guardian has no destination for this channel")
        if any(ch.isspace() or ch == "," for ch in target):
            # Apprise splits URL lists on these: one guardian must never add a second recipient.
            return Delivery.permanent("the guardian's destination holds a space or a comma")
        service = apprise.Apprise()
        if not service.add(self._template.substitute(target=target)) or len(service) != 1:
            return Delivery.permanent("Apprise does not recognise the URL for this guardian")
        text = message.text if message.url is None else f"{message.text}\n{message.url}"
        result = service.notify(body=text, title=message.subject, timeout=self.config.timeout_s)
        if result:
            return Delivery.accepted(None)
        # Apprise ≥ 2 says why in its captured log; older versions return a bare False.
        logs = getattr(result, "logs", None)
        reasons = [entry.message for entry in logs()] if logs else []
        return Delivery.temporary(snippet("; ".join(reasons) or "Apprise could not deliver"))
