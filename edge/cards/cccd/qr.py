"""The QR code printed on the back of a CCCD: ``|``-separated text, read by any QR scanner.

Known layout (by index): 12-digit ID number | 9-digit old ID (may be empty) | full name | date of
birth ddmmyyyy | sex (Nam/Nữ) | permanent address | issue date ddmmyyyy. Newer cards append empty
fields (11 in all); a 6-field variant without the old ID is reported by one source. The QR is not
signed, so it identifies a card but proves nothing: use the chip for that.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from pydantic import BaseModel

from edge.cards.cccd.errors import QrError

MIN_FIELDS = 6
MAX_FIELDS = 11
_ID = re.compile(r"^\d{12}$")
_OLD_ID = re.compile(r"^(\d{9}|\d{12})?$")
_DATE = re.compile(r"^\d{8}$")
SEXES = ("Nam", "Nữ")


class CccdQr(BaseModel):
    """The fields of a CCCD's printed QR code."""

    id_number: str
    old_id_number: str | None
    full_name: str
    date_of_birth: date
    sex: str
    address: str
    issue_date: date
    extra: list[str]
    """Non-empty fields after the seventh (none are known today)."""


def _date(value: str, what: str) -> date:
    if not _DATE.match(value):
        raise QrError(f"{what} must be 8 digits ddmmyyyy, got {value!r}")
    try:
        return date(int(value[4:]), int(value[2:4]), int(value[:2]))
    except ValueError:
        raise QrError(f"{what} {value!r} is not a date (ddmmyyyy)") from None


def parse_qr(text: str) -> CccdQr:
    """Parse and validate the QR text; every problem is a :class:`QrError` naming the field."""
    fields = [f.strip() for f in unicodedata.normalize("NFC", text.strip()).split("|")]
    if not MIN_FIELDS <= len(fields) <= MAX_FIELDS:
        raise QrError(
            f"a CCCD QR code has {MIN_FIELDS}-{MAX_FIELDS} '|'-separated fields, "
            f"this text has {len(fields)}"
        )
    if len(fields) == MIN_FIELDS:
        fields.insert(1, "")
    id_number, old_id, name, born, sex, address, issued, *rest = fields
    if not _ID.match(id_number):
        raise QrError(f"ID number must be 12 digits, got {id_number!r}")
    if not _OLD_ID.match(old_id):
        raise QrError(f"old ID number must be empty, 9 or 12 digits, got {old_id!r}")
    if not name:
        raise QrError("full name is empty")
    if sex not in SEXES:
        raise QrError(f"sex must be Nam or Nữ, got {sex!r}")
    return CccdQr(
        id_number=id_number,
        old_id_number=old_id or None,
        full_name=name,
        date_of_birth=_date(born, "date of birth"),
        sex=sex,
        address=address,
        issue_date=_date(issued, "issue date"),
        extra=[field for field in rest if field],
    )
