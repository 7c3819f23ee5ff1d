"""What every SMS channel shares: its settings for cost, and turning a message into the number
and the text a gateway is given."""

from __future__ import annotations

from pydantic import Field

from server.notify.channel import ChannelConfig, Delivery, Outgoing, recipient_phone
from server.notify.phone import VnPhone
from server.notify.sms_text import SmsText, prepare_sms


class SmsConfig(ChannelConfig):
    max_segments: int = Field(
        default=2, ge=1, le=6, description="Longest SMS the school pays for, in segments."
    )
    unicode: bool = Field(
        default=False,
        description="Send the full Vietnamese text when it fits max_segments; only for gateways "
        "and brandnames registered for Unicode.",
    )


def sms_parts(message: Outgoing, config: SmsConfig) -> tuple[VnPhone, SmsText] | Delivery:
    """The guardian's number and the text to send, or a permanent failure saying why there is
    no number to send to."""
    phone = recipient_phone(message)
    if isinstance(phone, Delivery):
        return phone
    text = prepare_sms(
        message.text,
        message.short_text,
        unicode=config.unicode,
        max_segments=config.max_segments,
    )
    return phone, text
