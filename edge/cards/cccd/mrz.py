"""Machine-readable-zone arithmetic: check digits, the BAC key, and the TD1 MRZ held in DG1.

BAC derives its keys from three MRZ fields (document number, date of birth, date of expiry), each
followed by its ICAO 9303 check digit. A typed key is checked here before it goes near the card,
so a typo is reported as a typo and never costs a mutual authentication. A CCCD carries a TD1
MRZ (three lines of 30): its MRZ document number is the last 9 digits of the 12-digit ID number,
and the full ID sits in the first optional-data field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel

from edge.cards.cccd.errors import MrzError

_WEIGHTS = (7, 3, 1)
_MRZ_CHARS = re.compile(r"^[0-9A-Z<]*$")
_DOC_NUMBER = re.compile(r"^[0-9A-Z<]{1,22}$")
_YYMMDD = re.compile(r"^\d{6}$")
TD1_LINE = 30


def _value(char: str) -> int:
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise MrzError(f"{char!r} is not an MRZ character (0-9, A-Z or <)")


def check_digit(field: str) -> str:
    """The ICAO 9303 check digit of ``field``: weights 7, 3, 1 over the character values, mod 10."""
    return str(sum(_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(field)) % 10)


def _yymmdd(value: str, what: str, *, calendar: bool) -> str:
    if not _YYMMDD.match(value):
        raise MrzError(f"{what} must be six digits YYMMDD, got {value!r}")
    if calendar:
        # The century is not in the MRZ; 2000 is a leap year, so no real date is refused.
        try:
            date(2000 + int(value[:2]), int(value[2:4]), int(value[4:]))
        except ValueError:
            raise MrzError(f"{what} {value!r} is not a date (YYMMDD)") from None
    return value


@dataclass(frozen=True, slots=True)
class MrzKey:
    """The three MRZ fields that open a chip with BAC, validated on construction.

    ``document_number`` is as printed in the MRZ without its check digit (a CCCD: the last 9
    digits of the ID number); dates are YYMMDD.
    """

    document_number: str
    date_of_birth: str
    date_of_expiry: str

    def __post_init__(self) -> None:
        number = self.document_number.strip().upper()
        if not _DOC_NUMBER.match(number) or not number.strip("<"):
            raise MrzError(
                "document number must be 1-22 characters of 0-9, A-Z or <, "
                f"got {self.document_number!r}"
            )
        object.__setattr__(self, "document_number", number)
        _yymmdd(self.date_of_birth, "date of birth", calendar=True)
        _yymmdd(self.date_of_expiry, "date of expiry", calendar=True)

    def mrz_information(self) -> str:
        """Document number (``<``-padded to 9) + check digit + birth + check + expiry + check."""
        number = self.document_number.ljust(9, "<")
        return "".join(
            field + check_digit(field)
            for field in (number, self.date_of_birth, self.date_of_expiry)
        )


class Td1Mrz(BaseModel):
    """A parsed TD1 MRZ (ID-card size: three lines of 30 characters) from DG1."""

    document_code: str
    issuing_state: str
    document_number: str
    optional_data_1: str
    date_of_birth: str
    sex: str
    date_of_expiry: str
    nationality: str
    optional_data_2: str
    primary_identifier: str
    secondary_identifier: str
    check_digits_valid: bool
    """False when any check digit disagrees. DG1's integrity comes from passive authentication;
    the check digits are reported rather than enforced so an odd issuer does not block a read."""


def _name(field: str) -> str:
    return " ".join(part for part in field.split("<") if part)


def parse_td1(text: str) -> Td1Mrz:
    """Parse a 90-character TD1 MRZ (line breaks allowed), including long document numbers.

    A document number longer than 9 characters has ``<`` in the check-digit position and
    continues in optional data 1 up to the next ``<``, the last character before it being the
    number's check digit; optional data proper follows.
    """
    mrz = text.replace("\n", "").replace("\r", "")
    if len(mrz) != 3 * TD1_LINE:
        raise MrzError(f"a TD1 MRZ has 90 characters, this one has {len(mrz)}")
    if not _MRZ_CHARS.match(mrz):
        raise MrzError("MRZ contains characters other than 0-9, A-Z and <")
    line1, line2, line3 = mrz[:30], mrz[30:60], mrz[60:]
    number, number_check, optional_1 = line1[5:14], line1[14], line1[15:30]
    if number_check == "<" and optional_1[0] != "<":
        extension, _, rest = optional_1.partition("<")
        number, number_check, optional_1 = number + extension[:-1], extension[-1], rest
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    checks = [
        (number, number_check),
        (line2[0:6], line2[6]),
        (line2[8:14], line2[14]),
        (composite, line2[29]),
    ]
    primary, _, secondary = line3.partition("<<")
    return Td1Mrz(
        document_code=line1[0:2].rstrip("<"),
        issuing_state=line1[2:5].rstrip("<"),
        document_number=number.rstrip("<"),
        optional_data_1=optional_1.strip("<"),
        date_of_birth=line2[0:6],
        sex=line2[7],
        date_of_expiry=line2[8:14],
        nationality=line2[15:18].rstrip("<"),
        optional_data_2=line2[18:29].strip("<"),
        primary_identifier=_name(primary),
        secondary_identifier=_name(secondary),
        check_digits_valid=all(check_digit(field) == digit for field, digit in checks),
    )
