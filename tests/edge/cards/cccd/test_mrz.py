"""MRZ check digits, the BAC key's MRZ information and TD1 parsing, on ICAO 9303's own examples."""

from __future__ import annotations

import pytest

from edge.cards.cccd.errors import MrzError
from edge.cards.cccd.mrz import MrzKey, check_digit, parse_td1

# ICAO 9303-5 TD1 specimens (Appendix A): a 9-character and a 12-character document number.
ERIKSSON = "".join(
    [
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    ]
)
STEVENSON = "".join(
    [
        "I<UTOD23145890<7349<<<<<<<<<<<",
        "3407127M9507122UTO<<<<<<<<<<<2",
        "STEVENSON<<PETER<JOHN<<<<<<<<<",
    ]
)
CCCD = "".join(
    [
        "IDVNM2080012340079208001234<<<",
        "0809155F3309151VNM<<<<<<<<<<<8",
        "NGUYEN<<THI<MINH<CHAU<<<<<<<<<",
    ]
)


@pytest.mark.parametrize(
    ("field", "digit"),
    [("L898902C<", "3"), ("690806", "1"), ("940623", "6"), ("D23145890734", "9"), ("", "0")],
)
def test_check_digits_match_icao_examples(field: str, digit: str) -> None:
    assert check_digit(field) == digit


def test_check_digit_refuses_non_mrz_characters() -> None:
    with pytest.raises(MrzError, match="not an MRZ character"):
        check_digit("AB-12")


def test_mrz_information_of_the_worked_example() -> None:
    key = MrzKey("L898902C", "690806", "940623")
    assert key.mrz_information() == "L898902C<369080619406236"


def test_key_normalises_case_and_keeps_long_numbers_whole() -> None:
    assert MrzKey(" l898902c ", "690806", "940623").document_number == "L898902C"
    key = MrzKey("D23145890734", "340712", "950712")
    assert key.mrz_information() == "D231458907349" + "3407127" + "9507122"


@pytest.mark.parametrize(
    ("number", "born", "expires", "message"),
    [
        ("", "690806", "940623", "document number"),
        ("<<<", "690806", "940623", "document number"),
        ("L8989-02C", "690806", "940623", "document number"),
        ("L898902C", "69086", "940623", "date of birth must be six digits"),
        ("L898902C", "691306", "940623", "date of birth '691306' is not a date"),
        ("L898902C", "690806", "940231", "date of expiry '940231' is not a date"),
    ],
)
def test_bad_keys_are_refused_before_any_card_sees_them(
    number: str, born: str, expires: str, message: str
) -> None:
    with pytest.raises(MrzError, match=message):
        MrzKey(number, born, expires)


def test_td1_specimen_parses_with_valid_check_digits() -> None:
    mrz = parse_td1(ERIKSSON)
    assert (mrz.document_code, mrz.issuing_state, mrz.document_number) == ("I", "UTO", "D23145890")
    assert (mrz.date_of_birth, mrz.sex, mrz.date_of_expiry) == ("740812", "F", "120415")
    assert (mrz.primary_identifier, mrz.secondary_identifier) == ("ERIKSSON", "ANNA MARIA")
    assert mrz.check_digits_valid


def test_td1_long_document_number_continues_in_optional_data() -> None:
    mrz = parse_td1(STEVENSON)
    assert mrz.document_number == "D23145890734"
    assert mrz.optional_data_1 == ""
    assert mrz.check_digits_valid
    with_optional_data = STEVENSON[:19] + "<AB12" + STEVENSON[24:]
    assert parse_td1(with_optional_data).optional_data_1 == "AB12"
    assert parse_td1(with_optional_data).document_number == "D23145890734"


def test_cccd_mrz_carries_the_full_id_number_in_optional_data() -> None:
    mrz = parse_td1(CCCD[:30] + "\n" + CCCD[30:60] + "\n" + CCCD[60:])
    assert (mrz.document_code, mrz.issuing_state, mrz.nationality) == ("ID", "VNM", "VNM")
    assert mrz.document_number == "208001234"
    assert mrz.optional_data_1 == "079208001234"
    assert mrz.check_digits_valid


def test_a_wrong_check_digit_is_reported_not_raised() -> None:
    altered = ERIKSSON[:30] + "7408123" + ERIKSSON[37:]
    assert not parse_td1(altered).check_digits_valid


@pytest.mark.parametrize(
    ("text", "message"),
    [(ERIKSSON[:-1], "90 characters"), (ERIKSSON.lower(), "characters other than")],
)
def test_malformed_td1_is_an_error(text: str, message: str) -> None:
    with pytest.raises(MrzError, match=message):
        parse_td1(text)
