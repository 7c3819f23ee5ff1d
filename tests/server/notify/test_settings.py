"""The notification settings refuse, at start-up, a lease a slow send could outlast."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.notify.settings import NotifySection

SMS = {"kind": "esms", "api_key": "k", "secret_key": "s", "brandname": "THCS", "timeout_s": 30}


def test_the_lease_must_outlast_a_send_to_every_push_device() -> None:
    NotifySection(channels={"sms": SMS}, lease_s=181)
    with pytest.raises(ValidationError, match=r"lease_s must exceed 6 × .*\(30 s\)"):
        NotifySection(channels={"sms": SMS}, lease_s=180)
    with pytest.raises(ValidationError, match="lease_s"):
        NotifySection(school_channels={7: {"sms": SMS | {"timeout_s": 60}}}, lease_s=300)


def test_an_opt_out_secret_must_be_long_and_the_public_url_a_url() -> None:
    with pytest.raises(ValidationError, match="opt_out_secret"):
        NotifySection(opt_out_secret="short")
    with pytest.raises(ValidationError, match="public_url"):
        NotifySection(public_url="truong.example.vn")
