"""eSMS.vn (ViHAT) brandname SMS through ``SendMultipleMessage_V4_post_json``.

One JSON POST per message with ``ApiKey``/``SecretKey`` in the body. Our idempotency key goes in
``RequestId``: eSMS refuses a second request with the same id for 24 hours (code 124), so a retry
after a timeout can never send a parent the same SMS twice — 124 therefore counts as accepted.
Codes are from eSMS's "Table of error codes" (developers.esms.vn).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from server.notify.channel import Channel, Delivery, Outgoing, provider_reference, snippet
from server.notify.channels.http_gateway import HttpGateway
from server.notify.channels.sms import SmsConfig, sms_parts

ESMS_URL = "https://rest.esms.vn/MainService.svc/json/SendMultipleMessage_V4_post_json/"

ACCEPTED = "100"
DUPLICATE_REQUEST = "124"
TEMPORARY_CODES = frozenset({"103"})
"""Not enough balance: retried, so messages go out once the school tops up."""

DESCRIPTIONS = {
    "99": "the phone number is blocked",
    "101": "wrong ApiKey or SecretKey",
    "102": "no price list for this account",
    "103": "not enough balance",
    "104": "brandname not registered",
    "108": "phone number rejected",
    "118": "unsupported message type",
    "140": "this server's IP address is not whitelisted",
    "146": "text does not match a registered customer-care template",
    "177": "the recipient's network is not registered for this brandname",
    "300": "missing message type",
}


class EsmsConfig(SmsConfig):
    kind: Literal["esms"] = "esms"
    url: str = ESMS_URL
    api_key: SecretStr
    secret_key: SecretStr
    brandname: str = Field(min_length=1, description="Registered sender name shown to parents.")
    sms_type: str = Field(default="2", description="2 = brandname customer care (CSKH).")
    sandbox: bool = Field(default=False, description="eSMS validates but neither sends nor bills.")
    callback_url: str | None = None
    campaign: str | None = None


class EsmsChannel(Channel):
    kind = "esms"
    address = "phone"
    deduplicates = True

    def __init__(self, name: str, config: EsmsConfig) -> None:
        super().__init__(name)
        self.config = config
        self._http = HttpGateway(config.timeout_s)

    def send(self, message: Outgoing) -> Delivery:
        parts = sms_parts(message, self.config)
        if isinstance(parts, Delivery):
            return parts
        phone, sms = parts
        body = {
            "ApiKey": self.config.api_key.get_secret_value(),
            "SecretKey": self.config.secret_key.get_secret_value(),
            "Phone": phone.national,
            "Content": sms.text,
            "Brandname": self.config.brandname,
            "SmsType": self.config.sms_type,
            "IsUnicode": "1" if sms.unicode else "0",
            "Sandbox": "1" if self.config.sandbox else "0",
            "RequestId": provider_reference(message.idempotency_key, 50),
        }
        if self.config.callback_url:
            body["CallbackUrl"] = self.config.callback_url
        if self.config.campaign:
            body["campaignid"] = self.config.campaign
        reply = self._http.post_json(self.config.url, body)
        if isinstance(reply, Delivery):
            return reply
        data = reply.json_object()
        if data is None or "CodeResult" not in data:
            if reply.ok:
                # eSMS answers {"error": "Invalid request"} when its own side fails; RequestId
                # makes a retry harmless.
                return Delivery.temporary(f"eSMS: no CodeResult in reply: {snippet(reply.text)}")
            return reply.unexpected("eSMS")
        code = str(data["CodeResult"])
        if code == ACCEPTED:
            return Delivery.accepted(data.get("SMSID"), f"{sms.segments} segment(s)")
        if code == DUPLICATE_REQUEST:
            return Delivery.accepted(None, "eSMS already has this RequestId: sent earlier")
        detail = f"eSMS {code}: {DESCRIPTIONS.get(code, data.get('ErrorMessage', 'error'))}"
        if code in TEMPORARY_CODES:
            return Delivery.temporary(detail)
        return Delivery.permanent(detail)

    def close(self) -> None:
        self._http.close()
