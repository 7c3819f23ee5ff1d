"""The printed CCCD QR code: known layouts parse, anything else is a QrError naming the field."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest

from edge.cards.cccd.errors import QrError
from edge.cards.cccd.qr import parse_qr

ELEVEN = (
    "093186002237|362499103|Nguyễn Thị Kim Thư|11011986|Nữ|"
    "56 Trần Hoàng Na, Kv6, An Khánh, Ninh Kiều, Cần Thơ|04102024||||"
)


def test_the_current_eleven_field_layout() -> None:
    qr = parse_qr(ELEVEN)
    assert (qr.id_number, qr.old_id_number) == ("093186002237", "362499103")
    assert qr.full_name == "Nguyễn Thị Kim Thư" and qr.sex == "Nữ"
    assert qr.date_of_birth == date(1986, 1, 11) and qr.issue_date == date(2024, 10, 4)
    assert qr.address.endswith("Cần Thơ") and qr.extra == []


def test_seven_fields_without_an_old_id() -> None:
    qr = parse_qr("001090123456||Trần Văn Nam|01011990|Nam|Phường Bến Nghé, Quận 1|15042021")
    assert qr.old_id_number is None and qr.sex == "Nam"


def test_six_field_variant_has_no_old_id_field() -> None:
    qr = parse_qr("001090123456|Trần Văn Nam|01011990|Nam|Quận 1|15042021")
    assert (qr.id_number, qr.full_name, qr.old_id_number) == ("001090123456", "Trần Văn Nam", None)


def test_decomposed_text_and_surrounding_space_are_normalised() -> None:
    qr = parse_qr("  " + unicodedata.normalize("NFD", ELEVEN) + "\n")
    assert qr.sex == "Nữ" and qr.full_name == "Nguyễn Thị Kim Thư"


def test_unknown_trailing_fields_are_kept() -> None:
    assert parse_qr(ELEVEN[:-3] + "X||").extra == ["X"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("093186002237|Nguyễn|11011986|Nữ|Cần Thơ", "6-11 '|'-separated fields, this text has 5"),
        (ELEVEN + "|", "this text has 12"),
        (ELEVEN.replace("093186002237", "09318600223"), "ID number must be 12 digits"),
        (ELEVEN.replace("362499103", "36249910"), "old ID number must be empty, 9 or 12"),
        (ELEVEN.replace("Nguyễn Thị Kim Thư", " "), "full name is empty"),
        (ELEVEN.replace("11011986", "1101986"), "date of birth must be 8 digits"),
        (ELEVEN.replace("11011986", "31021986"), "date of birth '31021986' is not a date"),
        (ELEVEN.replace("04102024", "2024-10-04"), "issue date must be 8 digits"),
        (ELEVEN.replace("|Nữ|", "|F|"), "sex must be Nam or Nữ"),
    ],
)
def test_bad_qr_text_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(QrError, match=message):
        parse_qr(text)
