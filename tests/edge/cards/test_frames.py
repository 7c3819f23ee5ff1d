"""The PN532 frame codec: the manual's literal frames, round trips, a decoder no input breaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cards.frames import (
    ACK,
    ERROR,
    EXTENDED_MAX_DATA,
    NACK,
    NORMAL_MAX_DATA,
    Ack,
    ErrorFrame,
    FrameDecoder,
    FrameError,
    Information,
    Nack,
    encode,
)

GET_FIRMWARE_VERSION = bytes.fromhex("0000FF02FED4022A00")  # UM0701-02 §7.2.2, as libnfc sends it
FIRMWARE_ANSWER = bytes.fromhex("0000FF06FAD50332010607E800")


def decode_all(data: bytes) -> tuple[list, FrameDecoder]:
    decoder = FrameDecoder()
    return decoder.feed(data), decoder


def test_the_manual_s_frames_encode_byte_for_byte() -> None:
    assert encode(Information(0xD4, b"\x02")) == GET_FIRMWARE_VERSION
    assert encode(Information(0xD5, bytes.fromhex("0332010607"))) == FIRMWARE_ANSWER
    assert [encode(Ack()), encode(Nack()), encode(ErrorFrame())] == [
        bytes.fromhex("0000FF00FF00"),
        bytes.fromhex("0000FFFF0000"),
        bytes.fromhex("0000FF01FF7F8100"),
    ]


def test_the_manual_s_frames_decode() -> None:
    frames, decoder = decode_all(ACK + FIRMWARE_ANSWER + NACK + ERROR)

    assert frames == [Ack(), Information(0xD5, bytes.fromhex("0332010607")), Nack(), ErrorFrame()]
    assert decoder.bad_frames == 0 and decoder.pending == 0


def test_data_longer_than_254_bytes_takes_an_extended_frame() -> None:
    data = bytes([0x40, 0x01]) + bytes(range(256)) + bytes(6)  # 264 bytes: InDataExchange max
    wire = encode(Information(0xD4, data))

    assert wire[:5] == b"\x00\x00\xff\xff\xff"
    assert wire[5:7] == (len(data) + 1).to_bytes(2, "big") and sum(wire[5:8]) & 0xFF == 0
    assert decode_all(wire)[0] == [Information(0xD4, data)]
    assert encode(Information(0xD4, bytes(NORMAL_MAX_DATA)))[3] == NORMAL_MAX_DATA + 1  # normal


@pytest.mark.parametrize(
    ("tfi", "data", "problem"),
    [
        (0xD5, b"", "1-264"),
        (0xD4, bytes(EXTENDED_MAX_DATA + 1), "1-264"),
        (0x7F, b"\x01", "D4 or D5"),
        (0x00, b"\x01", "D4 or D5"),
    ],
)
def test_impossible_frames_are_refused_when_built(tfi: int, data: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        Information(tfi, data)


def test_a_wrong_length_checksum_drops_the_frame_and_the_next_one_is_found() -> None:
    bad_lcs = bytearray(FIRMWARE_ANSWER)
    bad_lcs[4] ^= 0x01

    frames, decoder = decode_all(bytes(bad_lcs) + ACK)

    assert frames == [Ack()] and decoder.bad_frames == 1


def test_a_wrong_data_checksum_drops_the_frame_and_the_next_one_is_found() -> None:
    bad_dcs = bytearray(FIRMWARE_ANSWER)
    bad_dcs[-2] ^= 0x01

    frames, decoder = decode_all(bytes(bad_dcs) + FIRMWARE_ANSWER)

    assert frames == [Information(0xD5, bytes.fromhex("0332010607"))]
    assert decoder.bad_frames == 1


def test_a_frame_hidden_inside_a_damaged_one_is_still_found() -> None:
    """After a bad DCS the decoder rescans from the start code, not past the bad frame's LEN."""
    damaged = bytes.fromhex("0000FF20E0D5") + ACK  # claims 32 bytes; only the ACK follows

    frames, decoder = decode_all(damaged + bytes(27))

    assert frames == [Ack()] and decoder.bad_frames == 1


def test_garbage_and_a_wake_up_preamble_are_skipped() -> None:
    frames, decoder = decode_all(b"\x55\x55" + bytes(14) + b"\x13\x37garbage" + FIRMWARE_ANSWER)

    assert frames == [Information(0xD5, bytes.fromhex("0332010607"))]
    assert decoder.bad_frames == 0 and decoder.skipped_bytes > 0


def test_a_half_frame_waits_and_a_reset_forgets_it() -> None:
    decoder = FrameDecoder()

    assert decoder.feed(FIRMWARE_ANSWER[:7]) == [] and decoder.pending > 0
    decoder.reset()

    assert decoder.pending == 0
    assert decoder.feed(ACK) == [Ack()]


def test_an_extended_frame_with_an_impossible_length_is_dropped() -> None:
    frames, decoder = decode_all(bytes.fromhex("0000FFFFFF0200FE") + ACK)

    assert frames == [Ack()] and decoder.bad_frames == 1


def test_a_frame_with_a_foreign_tfi_is_dropped() -> None:
    body = bytes([0x42, 0x03])
    foreign = b"\x00\x00\xff\x02\xfe" + body + bytes([-sum(body) & 0xFF, 0])

    frames, decoder = decode_all(foreign + ACK)

    assert frames == [Ack()] and decoder.bad_frames == 1


information = st.builds(
    Information,
    tfi=st.sampled_from([0xD4, 0xD5]),
    data=st.binary(min_size=1, max_size=EXTENDED_MAX_DATA),
)
frames = st.one_of(st.just(Ack()), st.just(Nack()), st.just(ErrorFrame()), information)


@settings(max_examples=300, deadline=None)
@given(sequence=st.lists(frames, max_size=5), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_any_frames_round_trip_however_the_bytes_are_split(sequence, cuts) -> None:
    wire = b"".join(encode(frame) for frame in sequence)
    decoder = FrameDecoder()
    decoded = []
    start = 0
    for cut in [*sorted({c % (len(wire) + 1) for c in cuts}), len(wire)]:
        decoded += decoder.feed(wire[start:cut])
        start = cut

    assert decoded == sequence
    assert decoder.bad_frames == 0 and decoder.pending <= 1  # a postamble that came after its frame


@settings(max_examples=500, deadline=None)
@given(noise=st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_never_crash_the_decoder_or_grow_its_buffer(noise) -> None:
    decoder = FrameDecoder()
    for chunk in noise:
        for frame in decoder.feed(chunk):
            assert isinstance(frame, Ack | Nack | ErrorFrame | Information)
        assert decoder.pending <= 7 + EXTENDED_MAX_DATA + 2


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=200).map(lambda b: b.replace(b"\xff", b"")), frame=information)
def test_garbage_without_a_start_code_never_hides_the_frame_after_it(garbage, frame) -> None:
    assert decode_all(garbage + encode(frame))[0] == [frame]
