"""A CCCD's DG13 against a student record: names without diacritics, the ID number on record
(national_id, else a 12-digit code), and never the name alone."""

from __future__ import annotations

from edge.cards.cccd.lds import PersonalData
from firmware_tools.identity_match import match_student, plain_name

CARD = PersonalData(
    id_number="001208004321", full_name="Đặng Thị Ánh Tuyết", date_of_birth="02/01/2008"
)


def test_names_compare_without_diacritics_case_or_spacing() -> None:
    assert plain_name("Đặng  Thị Ánh  Tuyết ") == plain_name("DANG THI ANH TUYET")
    assert plain_name("Nguyễn Văn Ân") == "nguyen van an"
    assert plain_name("Lê Văn Hùng") != plain_name("Lê Văn Hưng Thịnh")


def test_a_record_with_the_id_number_as_code_is_matched_on_it() -> None:
    record = {
        "code": "001208004321",
        "full_name": "dang thi anh tuyet",
        "national_id": None,
        "date_of_birth": None,
    }
    check = match_student(CARD, record)
    assert check.ok and check.confirmed == ["name Đặng Thị Ánh Tuyết", "ID number 001208004321"]
    other = match_student(CARD, record | {"code": "001208009999"})
    assert other.mismatches == [
        "ID number: the card says 001208004321, the student code is 001208009999"
    ]


def test_a_record_with_a_national_id_is_matched_on_it() -> None:
    record = {"code": "HS7", "full_name": "Đặng Thị Ánh Tuyết", "national_id": "001208004321"}
    check = match_student(CARD, record)
    assert check.ok and check.confirmed == ["name Đặng Thị Ánh Tuyết", "ID number 001208004321"]
    other = match_student(CARD, record | {"national_id": "001208009999"})
    assert not other.ok and other.mismatches == [
        "ID number: the card says 001208004321, the national ID on record is 001208009999"
    ]


def test_a_national_id_on_record_takes_the_place_of_a_12_digit_code() -> None:
    """A 12-digit code need not be the ID number: once the record has the national ID, only that
    is compared."""
    record = {"code": "001208009999", "full_name": "Đặng Thị Ánh Tuyết"}
    assert match_student(CARD, record | {"national_id": "001208004321"}).ok
    wrong = match_student(CARD, {**record, "code": "001208004321", "national_id": "001208009999"})
    assert wrong.mismatches == [
        "ID number: the card says 001208004321, the national ID on record is 001208009999"
    ]


def test_a_record_with_a_date_of_birth_is_matched_on_it() -> None:
    record = {"code": "HS7", "full_name": "Đặng Thị Ánh Tuyết", "date_of_birth": "2008-01-02"}
    assert match_student(CARD, record).confirmed[1] == "date of birth 02/01/2008"
    wrong = match_student(CARD, record | {"date_of_birth": "2008-02-01"})
    assert not wrong.ok and wrong.mismatches[0].startswith("date of birth: the card says 02/01")


def test_the_name_alone_is_not_enough() -> None:
    check = match_student(CARD, {"code": "HS7", "full_name": "Đặng Thị Ánh Tuyết"})
    assert not check.ok and check.mismatches[0].startswith("only the name could be compared")


def test_a_card_without_personal_data_is_refused() -> None:
    record = {"code": "001208004321", "full_name": "Đặng Thị Ánh Tuyết"}
    assert not match_student(None, record).ok
