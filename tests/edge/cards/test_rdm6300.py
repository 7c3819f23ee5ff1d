"""The RDM6300: frames decoded from a noisy stream, and the reader debouncing repeats on a pty."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.cards.rdm6300 import RDM6300, Rdm6300Decoder, encode_frame
from edge.cards.reader import StreamOptions
from firmware_tools.emulators.rdm6300 import RDM6300Emulator

CARD = "0A1B2C3D4E"
FRAME = b"\x020A1B2C3D4E" + b"%02X" % (0x0A ^ 0x1B ^ 0x2C ^ 0x3D ^ 0x4E) + b"\x03"
FAST = StreamOptions(window_s=0.15, absent_polls=2)


def test_the_frame_is_stx_ten_hex_digits_their_xor_and_etx() -> None:
    assert encode_frame(bytes.fromhex(CARD)) == FRAME == b"\x020A1B2C3D4E4E\x03"
    with pytest.raises(ValueError, match="5 bytes"):
        encode_frame(b"\x01\x02\x03\x04")


def test_frames_decode_to_five_byte_uids_however_they_are_split() -> None:
    decoder = Rdm6300Decoder()

    assert decoder.feed(FRAME[:5]) == []
    assert decoder.feed(FRAME[5:] + FRAME.lower()) == [CARD, CARD]  # lower-case digits pass too
    assert decoder.bad_frames == 0


@pytest.mark.parametrize(
    "bad",
    [
        FRAME[:11] + b"00" + FRAME[13:],  # wrong checksum
        FRAME[:-1] + b"\x04",  # no ETX
        FRAME[:3] + b"G" + FRAME[4:],  # not a hex digit
        FRAME[:3] + b" " + FRAME[4:],  # fromhex would have skipped the space
    ],
)
def test_a_bad_frame_is_dropped_and_counted_and_the_next_good_one_read(bad: bytes) -> None:
    decoder = Rdm6300Decoder()

    assert decoder.feed(bad + b"\r\nnoise" + FRAME) == [CARD]
    assert decoder.bad_frames == 1


def test_a_good_frame_starting_inside_a_broken_one_is_found() -> None:
    decoder = Rdm6300Decoder()

    assert decoder.feed(FRAME[:6] + FRAME) == [CARD] and decoder.bad_frames == 1


@settings(max_examples=500, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=10))
def test_random_bytes_never_crash_the_decoder(chunks) -> None:
    decoder = Rdm6300Decoder()
    for chunk in chunks:
        for uid in decoder.feed(chunk):
            assert len(uid) == 10


@pytest.fixture
def emulator():
    with RDM6300Emulator(repeat_s=0.05) as emulator:
        yield emulator


@pytest.fixture
def reader(emulator):
    with RDM6300(emulator.path, options=FAST) as reader:
        yield reader


def test_a_held_card_repeating_its_frame_is_one_tap(reader, emulator) -> None:
    emulator.place(CARD)

    tap = reader.read_tap(timeout=1.0)
    assert reader.read_tap(timeout=0.4) is None

    assert tap is not None and (tap.uid, tap.kind) == (CARD, "em4100")
    assert emulator.frames_sent >= 5 and reader.stats.taps == 1


def test_a_card_removed_and_tapped_again_is_two_taps(reader, emulator) -> None:
    emulator.tap(CARD, hold_s=0.2)
    first = reader.read_tap(timeout=1.0)
    assert reader.read_tap(timeout=0.4) is None  # removal: two empty windows

    emulator.place(CARD)
    second = reader.read_tap(timeout=1.0)

    assert first is not None and second is not None and second.at > first.at


def test_frames_with_bad_checksums_are_skipped_and_counted(reader, emulator) -> None:
    emulator.corrupt_next(3)
    emulator.place(CARD)

    tap = reader.read_tap(timeout=1.5)

    assert tap is not None and tap.uid == CARD and reader.stats.bad_frames == 3


def test_noise_on_the_line_is_not_a_card(reader, emulator) -> None:
    emulator.send_noise(b"\x02\x02\x03garbage\x00\xff" * 5)

    assert reader.read_tap(timeout=0.4) is None
    assert reader.stats.bad_frames >= 1 and reader.stats.taps == 0


def test_frames_sent_before_the_port_opened_are_not_taps(emulator) -> None:
    emulator.tap(CARD, hold_s=0.2)  # nobody listening yet

    with RDM6300(emulator.path, options=FAST) as reader:
        assert reader.read_tap(timeout=0.3) is None
