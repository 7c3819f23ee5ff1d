"""Vietnamese mobile numbers in every form a school's records hold them."""

from __future__ import annotations

import pytest

from server.notify.phone import PhoneNumberError, parse_vn_mobile


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "0912 345 678",
        "0912.345.678",
        "0912-345-678",
        "+84912345678",
        "+84 912 345 678",
        "+84 (0) 912 345 678",
        "84912345678",
        "0084912345678",
        "840912345678",
    ],
)
def test_every_common_form_gives_one_number(raw: str) -> None:
    phone = parse_vn_mobile(raw)
    assert (phone.national, phone.international, phone.e164) == (
        "0912345678",
        "84912345678",
        "+84912345678",
    )
    assert str(phone) == "0912345678"


@pytest.mark.parametrize(
    "raw", ["0321234567", "0862345678", "0702345678", "0812345678", "0522345678", "0592345678",
            "0872345678", "0552345678", "0992345678", "0382345678"],
)  # fmt: skip
def test_each_network_is_a_mobile(raw: str) -> None:
    assert parse_vn_mobile(raw).national == raw


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("0912 345 67a", "not digits"),
        ("+1 415 555 0100", "not a Vietnamese number"),
        ("912345678", "should start with 0, 84 or"),
        ("091234567", "has 9 digits"),
        ("09123456789", "has 11 digits"),
        ("02838123456", "landline"),
        ("+84 24 3825 1234", "landline"),
        ("0112345678", "mobile prefix"),
        ("0612345678", "mobile prefix"),
        ("01621234567", "since 2018 it is 0321234567"),
        ("+84 128 123 4567", "since 2018 it is 0781234567"),
    ],
)
def test_unusable_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(PhoneNumberError, match=reason):
        parse_vn_mobile(raw)
