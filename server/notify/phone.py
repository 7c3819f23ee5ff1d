"""Vietnamese mobile numbers: one canonical form from whatever a school's spreadsheet holds.

Guardians' numbers arrive as "0912 345 678", "+84 912-345-678", "84912345678" or "0084…". SMS
gateways want the national form (0912345678) or the international one, Zalo ZNS wants "84…"
without the plus. Only mobile numbers can receive SMS or Zalo, so landlines (02x) and unknown
prefixes are refused here, with a reason an office clerk can act on, before any gateway bills us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Mobile prefixes after the leading 0 (10-digit numbering since the 2018 change).
MOBILE_PREFIXES = frozenset(
    {
        "32", "33", "34", "35", "36", "37", "38", "39", "86", "96", "97", "98",  # Viettel
        "70", "76", "77", "78", "79", "89", "90", "93",  # MobiFone
        "81", "82", "83", "84", "85", "88", "91", "94",  # VinaPhone
        "52", "56", "58", "92",  # Vietnamobile
        "59", "99",  # Gmobile
        "87",  # iTel
        "55",  # Reddi
    }
)  # fmt: skip

# 11-digit numbers retired in 2018 and the prefix that replaced each (0162… → 032…).
_RENUMBERED = {
    "162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37",
    "168": "38", "169": "39", "120": "70", "121": "79", "122": "77", "126": "76",
    "128": "78", "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
    "186": "56", "188": "58", "199": "59",
}  # fmt: skip

_SEPARATORS = re.compile(r"[\s.\-()/]")


class PhoneNumberError(ValueError):
    """A number that cannot receive SMS or Zalo messages; the message says why."""


@dataclass(frozen=True, slots=True)
class VnPhone:
    """A valid Vietnamese mobile number; ``subscriber`` is the 9 digits after the 0 / 84."""

    subscriber: str

    @property
    def national(self) -> str:
        """0912345678"""
        return "0" + self.subscriber

    @property
    def international(self) -> str:
        """84912345678 (Zalo ZNS, most SMS gateways)"""
        return "84" + self.subscriber

    @property
    def e164(self) -> str:
        """+84912345678"""
        return "+84" + self.subscriber

    def __str__(self) -> str:
        return self.national


def parse_vn_mobile(raw: str) -> VnPhone:
    """The number in ``raw`` (0…, +84…, 84…, 0084…; spaces, dots, dashes allowed), or
    :class:`PhoneNumberError` saying what is wrong with it."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise PhoneNumberError("phone number is empty")
    if text.startswith("+"):
        if not text[1:].isdigit():
            raise PhoneNumberError(f"{raw!r} has characters that are not digits")
        if not text.startswith("+84"):
            raise PhoneNumberError(f"{raw!r} is not a Vietnamese number (+84)")
        subscriber = text[3:]
    elif not text.isdigit():
        raise PhoneNumberError(f"{raw!r} has characters that are not digits")
    elif text.startswith("0084"):
        subscriber = text[4:]
    elif text.startswith("84"):
        subscriber = text[2:]
    elif text.startswith("0"):
        subscriber = text[1:]
    else:
        raise PhoneNumberError(f"{raw!r} should start with 0, 84 or +84")
    return VnPhone(_check_subscriber(raw, subscriber.removeprefix("0")))


def _check_subscriber(raw: str, subscriber: str) -> str:
    if len(subscriber) == 10 and subscriber[:3] in _RENUMBERED:
        new = "0" + _RENUMBERED[subscriber[:3]] + subscriber[3:]
        raise PhoneNumberError(
            f"{raw!r} is an old 11-digit number; since 2018 it is {new}, please update it"
        )
    if subscriber.startswith("2"):
        raise PhoneNumberError(f"{raw!r} is a landline; SMS and Zalo need a mobile number")
    if len(subscriber) != 9:
        raise PhoneNumberError(
            f"{raw!r} has {len(subscriber) + 1} digits; a mobile number has 10 (0 + 9)"
        )
    if subscriber[:2] not in MOBILE_PREFIXES:
        raise PhoneNumberError(f"{raw!r} does not start with a Vietnamese mobile prefix")
    return subscriber
