"""Unaccented GSM-7, segment counting and shortening, checked against independent rules."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.notify.sms_text import (
    GSM7_BASIC,
    count_segments,
    is_gsm7_basic,
    prepare_sms,
    shorten,
    to_gsm7,
    unaccent,
)

# Every Vietnamese vowel with each of the six tones, and the letter each must become.
VOWELS = {
    "a": "aàáảãạ",
    "ă": "ăằắẳẵặ",
    "â": "âầấẩẫậ",
    "e": "eèéẻẽẹ",
    "ê": "êềếểễệ",
    "i": "iìíỉĩị",
    "o": "oòóỏõọ",
    "ô": "ôồốổỗộ",
    "ơ": "ơờớởỡợ",
    "u": "uùúủũụ",
    "ư": "ưừứửữự",
    "y": "yỳýỷỹỵ",
}
BASE = {"a": "a", "ă": "a", "â": "a", "e": "e", "ê": "e", "i": "i", "o": "o", "ô": "o",
        "ơ": "o", "u": "u", "ư": "u", "y": "y"}  # fmt: skip
VIETNAMESE_LETTERS = "".join(VOWELS.values()) + "đ"

vietnamese_text = st.text(
    alphabet=st.sampled_from(
        VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper() + " 0123456789.,:;!?()-/"
    ),
    max_size=400,
)


def test_every_vietnamese_letter_loses_its_marks_both_cases() -> None:
    assert len(VIETNAMESE_LETTERS) == 73
    for base, forms in VOWELS.items():
        for letter in forms:
            assert unaccent(letter) == BASE[base]
            assert unaccent(letter.upper()) == BASE[base].upper()
    assert (unaccent("đ"), unaccent("Đ")) == ("d", "D")


def test_a_sentence_reads_unaccented() -> None:
    text = "Học sinh Đặng Thị Ánh Tuyết, lớp 9A2, đã rời trường lúc 16:35 tại Cổng phụ."
    assert to_gsm7(text) == (
        "Hoc sinh Dang Thi Anh Tuyet, lop 9A2, da roi truong luc 16:35 tai Cong phu."
    )


def test_punctuation_outside_the_basic_set_gets_a_near_spelling() -> None:
    assert to_gsm7("“Lớp 6A1” – giờ [7:00]… {ok} €5 ~ a|b 😀") == (
        '"Lop 6A1" - gio (7:00)... (ok) EUR5 - a/b ?'
    )


@given(st.text(max_size=300))
def test_output_is_always_gsm7_basic(text: str) -> None:
    assert is_gsm7_basic(to_gsm7(text))


@given(vietnamese_text)
def test_vietnamese_becomes_plain_ascii_of_the_same_length(text: str) -> None:
    out = to_gsm7(text)
    assert out.isascii() and len(out) == len(unicodedata.normalize("NFC", text))


@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC)), max_size=800))
def test_gsm7_segments_are_160_then_153(text: str) -> None:
    count = count_segments(text)
    expected = 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert (count.encoding, count.units, count.segments) == ("gsm7", len(text), expected)


@given(st.text(alphabet=st.sampled_from(VIETNAMESE_LETTERS + " "), min_size=1, max_size=500))
def test_ucs2_segments_are_70_then_67(text: str) -> None:
    count = count_segments(text)
    if count.encoding == "gsm7":  # only spaces and unmarked letters drawn
        return
    expected = 1 if len(text) <= 70 else math.ceil(len(text) / 67)
    assert (count.units, count.segments) == (len(text), expected)


def test_extension_characters_take_two_septets_and_never_straddle_parts() -> None:
    assert count_segments("€" * 80).units == 160
    assert count_segments("€" * 80).segments == 1
    # 152 basic + one escape pair: 154 septets do not fit a 153-septet part.
    assert count_segments("a" * 152 + "€" + "a" * 10).segments == 2
    assert count_segments("a" * 152 + "€" + "a" * 160).segments == 3


def test_surrogate_pairs_count_two_ucs2_units() -> None:
    assert count_segments("😀" * 35).units == 70
    assert count_segments("😀" * 35).segments == 1


@given(vietnamese_text, st.integers(min_value=1, max_value=3))
def test_shortened_text_fits_and_is_a_prefix(text: str, max_segments: int) -> None:
    gsm = to_gsm7(text)
    out = shorten(gsm, max_segments)
    assert count_segments(out).segments <= max_segments and is_gsm7_basic(out)
    if out != gsm:
        assert out.endswith("...") and gsm.startswith(out.removesuffix("...").rstrip(" ,;:-"))


def test_shortening_cuts_at_a_word_boundary() -> None:
    text = "Nguyen Van An " * 20
    out = shorten(text, 1)
    assert count_segments(out).segments == 1
    assert out.removesuffix("...").endswith("An") and len(out) > 150


def test_a_single_overlong_word_is_cut_hard() -> None:
    out = shorten("x" * 400, 1)
    assert out == "x" * 157 + "..."


def test_zero_segments_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shorten("x", 0)


FULL = "Học sinh Nguyễn Văn An, lớp 6A1, đã đến trường lúc 07:12 ngày 02/12/2026 tại Cổng chính."
SHORT = "Nguyen Van An (6A1) da den truong luc 07:12 02/12/2026 tai Cong chinh."


def test_unicode_form_when_allowed_and_it_fits() -> None:
    sms = prepare_sms(FULL, SHORT, unicode=True, max_segments=2)
    assert (sms.text, sms.unicode, sms.segments) == (FULL, True, 2)


def test_gsm7_form_when_unicode_is_not_allowed_or_too_long() -> None:
    for unicode, budget in ((False, 2), (True, 1)):
        sms = prepare_sms(FULL, SHORT, unicode=unicode, max_segments=budget)
        assert (sms.text, sms.unicode, sms.segments) == (SHORT, False, 1)
