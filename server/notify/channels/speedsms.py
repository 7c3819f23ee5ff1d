"""SpeedSMS (speedsms.vn) through ``POST /index.php/sms/send``.

HTTP Basic auth with the access token as user name and ``x`` as password; JSON ``to`` (a list),
``content``, ``sms_type``, ``sender``. A success is ``{"status": "success", "code": "00",
"data": {"tranId": …}}``; a failure ``{"status": "error", "code": …, "message": …}``, with the
rejected numbers in ``invalidPhone``. SpeedSMS has no request id to deduplicate on, so this
channel reports ``deduplicates = False`` and the dispatcher knows a retry after a timeout may
send twice.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from server.notify.channel import Channel, Delivery, Outgoing
from server.notify.channels.http_gateway import HttpGateway
from server.notify.channels.sms import SmsConfig, sms_parts

SPEEDSMS_URL = "https://api.speedsms.vn/index.php/sms/send"


class SpeedSmsConfig(SmsConfig):
    kind: Literal["speedsms"] = "speedsms"
    url: str = SPEEDSMS_URL
    access_token: SecretStr
    sms_type: int = Field(
        default=2,
        ge=1,
        le=8,
        description="2 = random number (CSKH), 3 = your brandname, 4 = SpeedSMS's default "
        "brandname (Notify/Verify), 5 = the SpeedSMS Android gateway app.",
    )
    sender: str = Field(default="", description="Brandname or device id, as sms_type needs.")


class SpeedSmsChannel(Channel):
    kind = "speedsms"
    address = "phone"

    def __init__(self, name: str, config: SpeedSmsConfig) -> None:
        super().__init__(name)
        self.config = config
        self._http = HttpGateway(
            config.timeout_s, auth=(config.access_token.get_secret_value(), "x")
        )

    def send(self, message: Outgoing) -> Delivery:
        parts = sms_parts(message, self.config)
        if isinstance(parts, Delivery):
            return parts
        phone, sms = parts
        body = {
            "to": [phone.national],
            "content": sms.text,
            "sms_type": self.config.sms_type,
            "sender": self.config.sender,
        }
        reply = self._http.post_json(self.config.url, body)
        if isinstance(reply, Delivery):
            return reply
        data = reply.json_object()
        if data is None or "status" not in data:
            return reply.unexpected("SpeedSMS")
        details = data.get("data") if isinstance(data.get("data"), dict) else {}
        invalid = data.get("invalidPhone") or details.get("invalidPhone")
        if invalid:
            return Delivery.permanent(f"SpeedSMS rejected the number {phone.national}")
        if data["status"] == "success":
            tran_id = details.get("tranId")
            return Delivery.accepted(
                None if tran_id is None else str(tran_id), f"{sms.segments} segment(s)"
            )
        return Delivery.permanent(
            f"SpeedSMS {data.get('code', '?')}: {data.get('message', 'error')}"
        )

    def close(self) -> None:
        self._http.close()
