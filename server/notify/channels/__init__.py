"""The channel adapters and the factory that builds a school's channels from its settings.

A school's notification settings are a mapping of channel names to adapter settings, each
selected by its ``kind``::

    {"push": {"kind": "webpush", "vapid_private_key": "…", "vapid_subject": "mailto:…"},
     "sms": {"kind": "esms", "api_key": "…", "secret_key": "…", "brandname": "TRUONG-ABC"},
     "zalo": {"kind": "zalo_zns", "access_token": "…", "templates": {…}}}

:class:`SchoolChannels` validates all of it at start-up (a wrong field fails at once, named), and
:func:`build_channels` turns it into ready :class:`~server.notify.channel.Channel` objects.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.notify.channel import Channel
from server.notify.channels.apprise_channel import AppriseChannel, AppriseConfig
from server.notify.channels.email import EmailChannel, EmailConfig
from server.notify.channels.esms import EsmsChannel, EsmsConfig
from server.notify.channels.generic_sms import GenericSmsChannel, GenericSmsConfig
from server.notify.channels.speedsms import SpeedSmsChannel, SpeedSmsConfig
from server.notify.channels.webpush import WebPushChannel, WebPushConfig
from server.notify.channels.zalo_zns import ZaloZnsChannel, ZaloZnsConfig

AnyChannelConfig = Annotated[
    WebPushConfig
    | EsmsConfig
    | SpeedSmsConfig
    | GenericSmsConfig
    | ZaloZnsConfig
    | EmailConfig
    | AppriseConfig,
    Field(discriminator="kind"),
]

ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]

ADAPTERS: dict[type[BaseModel], type[Channel]] = {
    WebPushConfig: WebPushChannel,
    EsmsConfig: EsmsChannel,
    SpeedSmsConfig: SpeedSmsChannel,
    GenericSmsConfig: GenericSmsChannel,
    ZaloZnsConfig: ZaloZnsChannel,
    EmailConfig: EmailChannel,
    AppriseConfig: AppriseChannel,
}


class SchoolChannels(BaseModel):
    """One school's channels by name (the names guardians' preferences list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: dict[ChannelName, AnyChannelConfig] = Field(default_factory=dict)


def build_channel(name: str, config: BaseModel) -> Channel:
    """The adapter for ``config``, named ``name``."""
    return ADAPTERS[type(config)](name, config)  # type: ignore[call-arg]


def build_channels(settings: SchoolChannels) -> dict[str, Channel]:
    """Every configured channel of a school, ready to send; close them when done."""
    return {name: build_channel(name, config) for name, config in settings.channels.items()}


__all__ = [
    "ADAPTERS",
    "AnyChannelConfig",
    "AppriseChannel",
    "AppriseConfig",
    "EmailChannel",
    "EmailConfig",
    "EsmsChannel",
    "EsmsConfig",
    "GenericSmsChannel",
    "GenericSmsConfig",
    "SchoolChannels",
    "SpeedSmsChannel",
    "SpeedSmsConfig",
    "WebPushChannel",
    "WebPushConfig",
    "ZaloZnsChannel",
    "ZaloZnsConfig",
    "build_channel",
    "build_channels",
]
