"""Does this CCCD belong to this student? The chip's DG13 compared with the school's record.

Before a CCCD's portrait becomes a student's face template, the card must be the student's:
otherwise one child's face would open the gate as another. The name must agree (ignoring
diacritics, case and spacing: a record typed without accents, "NGUYEN THI MINH CHAU", is the
same name as "Nguyễn Thị Minh Châu"), and at least one identifier must agree too, since
names repeat: the 12-digit personal ID number (số định danh cá nhân), and the date of birth when
the record has one. The ID number on record is the student's ``national_id``; a record without
one falls back to the student code when that is 12 digits (a school that uses the ID number as
the code, as the education database does). A disagreement on anything compared refuses the card.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

from edge.cards.cccd.lds import PersonalData

ID_NUMBER = re.compile(r"^\d{12}$")
"""A personal identification number (số định danh cá nhân), as printed on a CCCD."""


def plain_name(name: str) -> str:
    """A name without diacritics, case or extra spaces ('Đặng  Văn Ân' → 'dang van an')."""
    decomposed = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def _card_date(text: str | None) -> date | None:
    """DG13 dates are dd/mm/yyyy text; anything else is treated as absent."""
    try:
        return datetime.strptime(text or "", "%d/%m/%Y").date()
    except ValueError:
        return None


@dataclass(frozen=True)
class IdentityCheck:
    """What agreed (``confirmed``) and what did not (``mismatches``), in words."""

    confirmed: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _recorded_id_number(student: dict) -> tuple[str, str] | None:
    """The student's personal ID number on record and where it is kept, or None if neither:
    ``national_id`` when set (then the code is not compared, whatever it looks like), else a
    12-digit student code."""
    if student.get("national_id"):
        return student["national_id"], "the national ID on record"
    if ID_NUMBER.fullmatch(student["code"]):
        return student["code"], "the student code"
    return None


def match_student(card: PersonalData | None, student: dict) -> IdentityCheck:
    """Compare a card's DG13 with a student as the API returns it (code, full_name,
    national_id as 12 digits or null, date_of_birth as YYYY-MM-DD or null)."""
    if card is None:
        return IdentityCheck(mismatches=["the card holds no personal data (DG13) to compare"])
    confirmed: list[str] = []
    mismatches: list[str] = []
    name = card.full_name or ""
    if plain_name(name) == plain_name(student["full_name"]):
        confirmed.append(f"name {name}")
    else:
        mismatches.append(
            f"name: the card says {name!r}, the student record {student['full_name']!r}"
        )
    identifiers = 0
    recorded_id = _recorded_id_number(student)
    if recorded_id is not None:
        identifiers += 1
        number, kept_in = recorded_id
        if card.id_number == number:
            confirmed.append(f"ID number {card.id_number}")
        else:
            mismatches.append(f"ID number: the card says {card.id_number}, {kept_in} is {number}")
    if student.get("date_of_birth"):
        identifiers += 1
        recorded = date.fromisoformat(student["date_of_birth"])
        on_card = _card_date(card.date_of_birth)
        if on_card == recorded:
            confirmed.append(f"date of birth {recorded:%d/%m/%Y}")
        else:
            mismatches.append(
                f"date of birth: the card says {card.date_of_birth}, the record {recorded:%d/%m/%Y}"
            )
    if not identifiers:
        mismatches.append(
            "only the name could be compared: record the student's 12-digit personal ID "
            "number (national_id) or date of birth"
        )
    return IdentityCheck(confirmed, mismatches)
