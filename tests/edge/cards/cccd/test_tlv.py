"""BER-TLV decoding: every length checked, every malformed input an LdsError naming the spot."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.cards.cccd.errors import LdsError
from edge.cards.cccd.tlv import (
    Tlv,
    decode_int,
    decode_oid,
    encode,
    encoded_length,
    parse_all,
    parse_one,
    read_tlv,
)

H = bytes.fromhex


def test_multi_byte_tags_and_long_lengths() -> None:
    value = bytes(300)
    tlv = parse_one(H("7F61") + H("82012C") + value)
    assert (tlv.tag, tlv.value, tlv.constructed) == (0x7F61, value, True)
    assert parse_one(H("5F1F8105") + b"ABCDE").value == b"ABCDE"
    assert not parse_one(H("5F1F00")).constructed


def test_children_and_child_lookup() -> None:
    outer = parse_one(H("6008") + H("5F0102AAAA") + H("5C0161"))
    assert [child.tag for child in outer.children()] == [0x5F01, 0x5C]
    assert outer.child(0x5C).value == H("61")
    with pytest.raises(LdsError, match="tag 60 has no 5F36 inside"):
        outer.child(0x5F36)
    with pytest.raises(LdsError, match="tag 5C is primitive"):
        outer.child(0x5C).children()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "found the end of the data"),
        (H("5F"), "tag at byte 0 is cut off"),
        (H("5FFFFF01"), "longer than 3 bytes"),
        (H("61"), "has no length"),
        (H("6180"), "indefinite length"),
        (H("6184FFFFFFFF"), "4-byte length field"),
        (H("6182FF"), "length of tag 61 at byte 0 is cut off"),
        (H("6105AABB"), "claims 5 bytes, only 2 follow"),
    ],
)
def test_malformed_tlvs_are_clear_errors(data: bytes, message: str) -> None:
    with pytest.raises(LdsError, match=message):
        read_tlv(data)


def test_parse_one_refuses_trailing_bytes_and_wrong_tags() -> None:
    with pytest.raises(LdsError, match="2 unexpected bytes after tag 61"):
        parse_one(H("6100") + H("0000"))
    with pytest.raises(LdsError, match="expected tag 75, found 61"):
        parse_one(H("6100"), 0x75)


def test_errors_inside_a_constructed_value_name_the_outer_tag() -> None:
    with pytest.raises(LdsError, match="inside tag 77: tag 30 at byte 0 claims 9 bytes"):
        parse_one(H("7703") + H("3009FF")).children()


def test_encoded_length_sizes_a_file_from_its_first_bytes() -> None:
    assert encoded_length(H("60145F01")) == 0x16
    assert encoded_length(H("75824652")) == 4 + 0x4652
    assert encoded_length(H("778100")) == 3
    with pytest.raises(LdsError):
        encoded_length(H("7582"))


@pytest.mark.parametrize(
    ("encoded", "dotted"),
    [
        ("0606678108010101", "2.23.136.1.1.1"),
        ("06092A864886F70D010702", "1.2.840.113549.1.7.2"),
        ("0603883703", "2.999.3"),
        ("060704007F00070202", "0.4.0.127.0.7.2.2"),
    ],
)
def test_object_identifiers(encoded: str, dotted: str) -> None:
    assert decode_oid(parse_one(H(encoded))) == dotted


@pytest.mark.parametrize("data", ["0600", "060181"])
def test_empty_or_cut_off_oids_are_errors(data: str) -> None:
    with pytest.raises(LdsError, match="empty or cut off"):
        decode_oid(parse_one(H(data)))


def test_integers_are_twos_complement_and_typed() -> None:
    assert decode_int(parse_one(H("0201FF"))) == -1
    assert decode_int(parse_one(H("02020080"))) == 128
    with pytest.raises(LdsError, match="no value bytes"):
        decode_int(parse_one(H("0200")))
    with pytest.raises(LdsError, match="expected an INTEGER"):
        decode_int(parse_one(H("0401FF")))
    with pytest.raises(LdsError, match="expected an OBJECT IDENTIFIER"):
        decode_oid(parse_one(H("0201FF")))


tags = st.one_of(
    st.integers(0x01, 0x1E).map(lambda t: t | 0x40),
    st.integers(0x01, 0x7F).map(lambda t: 0x5F00 | t),
)


@given(tag=tags, value=st.binary(max_size=70_000))
def test_encode_then_parse_round_trips(tag: int, value: bytes) -> None:
    tlv = parse_one(encode(tag, value))
    assert (tlv.tag, tlv.value) == (tag, value)
    assert encoded_length(tlv.raw[:8]) == len(tlv.raw)


def _walk(items: list[Tlv], depth: int = 0) -> None:
    for item in items:
        if item.constructed and depth < 8:
            _walk(item.children(), depth + 1)


@given(st.binary(max_size=300))
def test_random_bytes_raise_nothing_but_lds_errors(data: bytes) -> None:
    with contextlib.suppress(LdsError):
        _walk(parse_all(data))
