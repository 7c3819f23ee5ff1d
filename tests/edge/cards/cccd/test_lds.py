"""EF.COM, DG1, DG2 and DG13 parsing: real layouts, Vietnamese text, and malformed files that
must end in an LdsError (never another exception), whatever bytes a chip sends."""

from __future__ import annotations

import contextlib
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.cards.cccd.errors import LdsError
from edge.cards.cccd.lds import parse_dg1, parse_dg2, parse_dg13, parse_ef_com
from edge.cards.cccd.pace import parse_card_access
from edge.cards.cccd.sod import parse_sod
from firmware_tools.emulators.emrtd_data import (
    Citizen,
    build_document,
    der,
    dg1,
    dg2,
    dg13,
    ef_com,
    integer,
    oid,
    portrait,
    seq,
    set_of,
    utf8,
)

H = bytes.fromhex
FACE = portrait(60, 80)


def dg13_of(*fields: bytes) -> bytes:
    return der(0x6D, seq(integer(1), oid("1.0.10646.1.0.8"), set_of(*fields)))


def test_ef_com_lists_versions_and_data_groups() -> None:
    com = parse_ef_com(ef_com([1, 2, 3, 13]))
    assert (com.lds_version, com.unicode_version, com.data_groups) == (
        "0107",
        "040000",
        [1, 2, 3, 13],
    )
    icao = parse_ef_com(H("60145F0104303130365F36063034303030305C026175"))
    assert icao.data_groups == [1, 2]


def test_ef_com_with_an_unknown_tag_is_an_error() -> None:
    bad = der(0x60, der(0x5F01, b"0107") + der(0x5F36, b"040000") + der(0x5C, H("6199")))
    with pytest.raises(LdsError, match="unknown data-group tags 99"):
        parse_ef_com(bad)


def test_dg1_holds_the_td1_mrz() -> None:
    mrz = parse_dg1(dg1(Citizen()))
    assert mrz.document_number == "208001234" and mrz.check_digits_valid


def test_dg1_with_a_broken_mrz_names_dg1() -> None:
    with pytest.raises(LdsError, match="DG1: a TD1 MRZ has 90 characters, this one has 3"):
        parse_dg1(der(0x61, der(0x5F1F, b"ABC")))
    with pytest.raises(LdsError, match="DG1 MRZ is not ASCII"):
        parse_dg1(der(0x61, der(0x5F1F, "Ư".encode())))


@pytest.mark.parametrize("image_format", ["jpeg", "jpeg2000"])
def test_dg2_yields_the_portrait(image_format: str) -> None:
    face = parse_dg2(dg2(FACE, image_format, "Nam"))  # type: ignore[arg-type]
    assert (face.format, face.width, face.height) == (image_format, 60, 80)
    assert face.to_rgb().shape == (80, 60, 3)
    assert face.suffix == (".jpg" if image_format == "jpeg" else ".jp2")


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


GOOD_DG2 = dg2(FACE, "jpeg", "Nam")


@pytest.mark.parametrize(
    ("altered", "message"),
    [
        (_replace(GOOD_DG2, b"FAC\x00", b"FAX\x00"), "not an ISO 19794-5 facial record"),
        (_replace(GOOD_DG2, b"010\x00", b"030\x00"), "version b'030' is not supported"),
        (
            _replace(GOOD_DG2, b"\x01\x00\x00\x3c\x00\x50", b"\x01\x07\x00\x3c\x00\x50"),
            "image data type 7 is neither",
        ),
        (
            _replace(GOOD_DG2, b"\x01\x00\x00\x3c\x00\x50", b"\x01\x01\x00\x3c\x00\x50"),
            "says jpeg2000 but the image bytes",
        ),
        (_replace(GOOD_DG2, b"\x5f\x2e", b"\x7f\x2e"), "enciphered"),
        (_replace(GOOD_DG2, b"\x5f\x2e", b"\x5f\x2f"), "no biometric data block"),
        (_replace(GOOD_DG2, b"\x02\x01\x01\x7f\x60", b"\x02\x01\x00\x7f\x60"), "no biometric"),
    ],
)
def test_malformed_dg2_is_an_error(altered: bytes, message: str) -> None:
    with pytest.raises(LdsError, match=message):
        parse_dg2(altered)


def test_dg2_image_length_must_fit_the_record() -> None:
    facial = GOOD_DG2[GOOD_DG2.index(b"FAC\x00") :]
    block_length = facial[14:18]
    huge = (int.from_bytes(block_length, "big") + 1).to_bytes(4, "big")
    with pytest.raises(LdsError, match="claims .* bytes for its first image"):
        parse_dg2(_replace(GOOD_DG2, facial[:18], facial[:14] + huge))


def test_undecodable_portrait_is_an_error() -> None:
    face = parse_dg2(GOOD_DG2)
    broken = face.model_copy(update={"data": face.data[:20]})
    with pytest.raises(LdsError, match="DG2 face image .jpeg."):
        broken.to_rgb()


def test_dg13_reads_every_field_with_its_diacritics() -> None:
    person = Citizen()
    data = parse_dg13(dg13(person))
    assert data.full_name == "Nguyễn Thị Minh Châu"
    assert data.residence == person.residence and data.home_town == person.home_town
    assert (data.father_name, data.mother_name) == ("Nguyễn Văn Hùng", "Trần Thị Thu Hà")
    assert data.date_of_birth == "15/09/2008" and data.sex == "Nữ"


def test_dg13_fields_are_found_by_number_and_missing_ones_stay_empty() -> None:
    data = parse_dg13(
        dg13_of(
            seq(integer(14), seq(utf8("Phạm Quốc Bảo"))),
            seq(integer(2), utf8("Đỗ Thùy Dương")),
            seq(integer(16), utf8("0123456789abcdef")),
            seq(integer(15), der(0x13, b"B1234567")),
            seq(integer(10)),  # present without a value: nothing to report
            seq(integer(7), utf8("  ")),
        )
    )
    assert data.full_name == "Đỗ Thùy Dương" and data.spouse_name == "Phạm Quốc Bảo"
    assert data.other_document_number == "B1234567"
    assert data.extra == {16: "0123456789abcdef"}
    assert data.id_number is None and data.identifying_marks is None and data.religion is None


def test_dg13_text_is_normalised_to_composed_unicode() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn")
    assert parse_dg13(dg13_of(seq(integer(2), utf8(decomposed)))).full_name == "Nguyễn"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (seq(integer(2), der(0x0C, b"\xc3\x28")), "field 2 is not valid utf-8"),
        (seq(integer(2), integer(5)), "field 2: expected a string, found tag 2"),
        (seq(integer(13), utf8("Nguyễn Văn A")), "field 13: expected a SEQUENCE of names"),
        (seq(integer(3), utf8("a"), utf8("b")), "field 3 has 2 values"),
        (seq(), "empty field entry"),
        (integer(4), "not a SEQUENCE"),
    ],
)
def test_malformed_dg13_is_an_error(field: bytes, message: str) -> None:
    with pytest.raises(LdsError, match=message):
        parse_dg13(dg13_of(field))


def test_card_access_pace_infos() -> None:
    chip_authentication = seq(oid("0.4.0.127.0.7.2.2.3.2.4"), integer(1))
    domain_parameters = seq(oid("0.4.0.127.0.7.2.2.4.2"), seq(oid("1.2.840.10045.2.1")))
    pace_im = seq(oid("0.4.0.127.0.7.2.2.4.4.4"), integer(2))
    infos = parse_card_access(set_of(chip_authentication, domain_parameters, pace_im))
    assert [(i.name, i.version, i.parameter_id) for i in infos] == [
        ("ECDH-IM-AES-CBC-CMAC-256", 2, None)
    ]
    with pytest.raises(LdsError, match="not a SecurityInfo SEQUENCE"):
        parse_card_access(set_of(integer(1)))


# --- whatever the chip sends, the parsers fail only with our error ---

PARSERS = [parse_ef_com, parse_dg1, parse_dg2, parse_dg13, parse_sod, parse_card_access]
DOCUMENT = build_document(portrait_size=(48, 64))
VALID_FILES = [
    (parse_ef_com, DOCUMENT.files[0x011E]),
    (parse_dg1, DOCUMENT.files[0x0101]),
    (parse_dg2, DOCUMENT.files[0x0102]),
    (parse_dg13, DOCUMENT.files[0x010D]),
    (parse_sod, DOCUMENT.files[0x011D]),
    (parse_card_access, DOCUMENT.master_files[0x011C]),
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(PARSERS), data=st.binary(max_size=200))
def test_random_bytes_never_crash_a_parser(parser, data: bytes) -> None:
    with contextlib.suppress(LdsError):
        parser(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(VALID_FILES), position=st.integers(0), value=st.integers(0, 255))
def test_a_corrupted_byte_never_crashes_a_parser(case, position: int, value: int) -> None:
    parser, valid = case
    corrupted = bytearray(valid)
    corrupted[position % len(valid)] = value
    try:
        result = parser(bytes(corrupted))
    except LdsError:
        return
    if parser is parse_dg2:
        with contextlib.suppress(LdsError):
            result.to_rgb()
