"""Zalo Notification Service: a pre-approved template filled with our fields, sent to the Zalo
account behind the guardian's phone number.

``POST https://business.openapi.zalo.me/message/template`` with the Official Account's
``access_token`` header and JSON ``phone`` (84…), ``template_id``, ``template_data``,
``tracking_id``. Zalo answers HTTP 200 with ``{"error": 0, "data": {"msg_id": …}}`` or a negative
``error`` and an English ``message``. Zalo approves each template's wording itself, so the school
registers one per kind and maps the template's parameters to our field names; our own text is not
sent. ``tracking_id`` carries our idempotency key so a delivery callback or Zalo's console finds the
outbox row; Zalo does not document deduplicating on it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from server.notify.channel import (
    Channel,
    ChannelConfig,
    Delivery,
    Outgoing,
    provider_reference,
    recipient_phone,
)
from server.notify.channels.http_gateway import HttpGateway
from server.notify.messages import FIELD_NAMES
from server.notify.templates import MessageKind

ZNS_URL = "https://business.openapi.zalo.me/message/template"
TRACKING_ID_MAX = 48
TEMPLATE_KEYS = frozenset(MessageKind) | {"digest"}


class ZnsTemplate(BaseModel):
    """One approved template and where each of its parameters comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template_id: str = Field(min_length=1)
    params: dict[str, str] = Field(
        description="Template parameter name → our field name (student_name, class_name, time, "
        "date, gate, school_name, reason)."
    )

    @field_validator("params")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - FIELD_NAMES)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; use {sorted(FIELD_NAMES)}")
        return value


class ZaloZnsConfig(ChannelConfig):
    kind: Literal["zalo_zns"] = "zalo_zns"
    url: str = ZNS_URL
    access_token: SecretStr
    templates: dict[str, ZnsTemplate] = Field(
        description="Per message kind (arrived, left, late, absent, excused, card_without_face, "
        "digest); a kind without a template fails over to the guardian's next channel."
    )
    temporary_errors: frozenset[int] = Field(
        default=frozenset({-100, -115, -133, -144}),
        description="Zalo error codes worth retrying: unknown error, out of quota, outside the "
        "sending hours, the OA's daily quota. Every other negative code is permanent.",
    )

    @field_validator("templates")
    @classmethod
    def _known_kinds(cls, value: dict[str, ZnsTemplate]) -> dict[str, ZnsTemplate]:
        unknown = sorted(set(value) - TEMPLATE_KEYS)
        if unknown:
            raise ValueError(f"unknown message kind(s) {unknown}; use {sorted(TEMPLATE_KEYS)}")
        return value


class ZaloZnsChannel(Channel):
    kind = "zalo_zns"
    address = "phone"

    def __init__(self, name: str, config: ZaloZnsConfig) -> None:
        super().__init__(name)
        self.config = config
        self._http = HttpGateway(
            config.timeout_s, headers={"access_token": config.access_token.get_secret_value()}
        )

    def send(self, message: Outgoing) -> Delivery:
        template = self.config.templates.get(message.kind)
        if template is None:
            return Delivery.permanent(f"no approved ZNS template for {message.kind!r} messages")
        phone = recipient_phone(message)
        if isinstance(phone, Delivery):
            return phone
        body = {
            "phone": phone.international,
            "template_id": template.template_id,
            "template_data": {
                param: message.fields.get(field, "") for param, field in template.params.items()
            },
            "tracking_id": provider_reference(message.idempotency_key, TRACKING_ID_MAX),
        }
        reply = self._http.post_json(self.config.url, body)
        if isinstance(reply, Delivery):
            return reply
        data = reply.json_object()
        if data is None or not isinstance(data.get("error"), int):
            return reply.unexpected("Zalo ZNS")
        code = data["error"]
        if code == 0:
            result = data.get("data") if isinstance(data.get("data"), dict) else {}
            return Delivery.accepted(result.get("msg_id"))
        detail = f"Zalo ZNS {code}: {data.get('message', 'error')}"
        if code in self.config.temporary_errors:
            return Delivery.temporary(detail)
        return Delivery.permanent(detail)

    def close(self) -> None:
        self._http.close()
