"""A school's channel settings: validated as a whole at start-up, built into ready channels."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.notify.channel import Channel
from server.notify.channels import ADAPTERS, SchoolChannels, build_channels
from server.notify.channels.esms import EsmsChannel
from server.notify.channels.zalo_zns import ZaloZnsChannel

SETTINGS = {
    "channels": {
        "sms": {"kind": "esms", "api_key": "k", "secret_key": "s", "brandname": "THCS"},
        "zalo": {
            "kind": "zalo_zns",
            "access_token": "t",
            "templates": {"arrived": {"template_id": "1", "params": {"ten": "student_name"}}},
        },
        "mail": {"kind": "email", "host": "smtp.example.vn", "from_address": "a@example.vn"},
        "chat": {"kind": "apprise", "url": "ntfys://ntfy.sh/$target"},
    }
}


def test_each_named_channel_is_built_by_its_adapter() -> None:
    channels = build_channels(SchoolChannels.model_validate(SETTINGS))
    assert list(channels) == ["sms", "zalo", "mail", "chat"]
    assert isinstance(channels["sms"], EsmsChannel) and channels["sms"].name == "sms"
    assert isinstance(channels["zalo"], ZaloZnsChannel)
    assert [channel.address for channel in channels.values()] == [
        "phone",
        "phone",
        "email",
        "apprise",
    ]
    for channel in channels.values():
        channel.close()


def test_every_adapter_implements_the_channel_interface() -> None:
    kinds = set()
    for config_type, channel_type in ADAPTERS.items():
        assert issubclass(channel_type, Channel)
        assert config_type.model_fields["kind"].default == channel_type.kind
        kinds.add(channel_type.kind)
    assert kinds == {"webpush", "esms", "speedsms", "generic_sms", "zalo_zns", "email", "apprise"}


@pytest.mark.parametrize(
    ("channels", "complaint"),
    [
        ({"sms": {"kind": "carrier-pigeon"}}, "kind"),
        ({"sms": {"kind": "esms", "api_key": "k", "secret_key": "s"}}, "brandname"),
        ({"SMS!": {"kind": "esms", "api_key": "k", "secret_key": "s", "brandname": "B"}}, "SMS!"),
        (
            {"sms": {"kind": "speedsms", "access_token": "t", "max_segments": 9}},
            "max_segments",
        ),
    ],
)
def test_a_wrong_setting_fails_at_once_with_the_field_named(channels: dict, complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        SchoolChannels.model_validate({"channels": channels})
