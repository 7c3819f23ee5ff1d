"""The PN532 driver against the emulated chip on a real pty: commands, cards, faults, polling."""

from __future__ import annotations

import threading
import time

import pytest

from edge.cards.pn532 import (
    PN532,
    CardAuthenticationError,
    CardError,
    CardGone,
    CardTimeout,
    CardTransmissionError,
    Firmware,
    PN532Options,
)
from edge.cards.reader import (
    ReaderProtocolError,
    ReaderTimeout,
    ReaderUnavailable,
    Tap,
)
from firmware_tools.emulators.pn532 import EmulatedCard, Fault, PN532Emulator
from firmware_tools.emulators.pty_pair import PtyPair

FAST = PN532Options(
    ack_timeout_s=0.05,
    response_timeout_s=0.3,
    open_timeout_s=0.3,
    poll_interval_s=0.02,
    absent_polls=2,
)
MIFARE = EmulatedCard(bytes.fromhex("04A1B2C3D4E5F6"))


class Echo:
    """An ISO 14443-4 application that answers an APDU with its bytes reversed and 90 00."""

    def __init__(self, answer_size: int | None = None) -> None:
        self.answer_size = answer_size
        self.received: list[bytes] = []

    def process_apdu(self, apdu: bytes) -> bytes:
        self.received.append(apdu)
        if self.answer_size is not None:
            return bytes(i & 0xFF for i in range(self.answer_size)) + b"\x90\x00"
        return apdu[::-1] + b"\x90\x00"


@pytest.fixture
def emulator():
    with PN532Emulator() as emulator:
        yield emulator


@pytest.fixture
def chip(emulator: PN532Emulator):
    with PN532(emulator.path, options=FAST) as chip:
        yield chip


# --- bring-up and close ------------------------------------------------------------------------
def test_open_wakes_the_chip_reads_its_firmware_and_bounds_its_retries(emulator) -> None:
    with PN532(emulator.path, options=FAST) as chip:
        assert chip.firmware == Firmware(0x32, 1, 6, 7)
        assert str(chip.firmware) == "PN532 v1.6 (ISO14443A, ISO14443B, ISO18092)"
        assert chip.info()["firmware"] == str(chip.firmware)
        assert emulator.seen.commands == [0x14, 0x02, 0x32]
        assert emulator.seen.ignored_while_asleep == 0  # the wake-up came with the first frame

        started = time.monotonic()
        assert chip.list_passive_target("A") is None  # an empty field answers at once
        assert time.monotonic() - started < FAST.response_timeout_s


def test_unbounded_retries_would_block_the_search_which_is_why_they_are_bounded(chip) -> None:
    chip.command(0x32, bytes([0x05, 0xFF, 0x01, 0xFF]))  # MaxRetries back to the chip's default

    with pytest.raises(ReaderTimeout, match="did not answer command 0x4a"):
        chip.list_passive_target("A")


def test_close_aborts_and_powers_down_and_the_chip_wakes_again_for_the_next_open(emulator):
    with PN532(emulator.path, options=FAST):
        pass

    assert emulator.seen.commands[-1] == 0x16 and emulator.seen.host_acks >= 1
    with PN532(emulator.path, options=FAST) as chip:
        assert chip.firmware is not None


def test_no_chip_answering_is_a_timeout_that_says_what_to_check() -> None:
    silent = PtyPair()  # a port with nothing behind it
    try:
        started = time.monotonic()
        with pytest.raises(ReaderTimeout, match=r"no PN532 answered on .*\(check the wiring"):
            PN532(silent.path, options=FAST).open()
        assert time.monotonic() - started < 3 * FAST.open_timeout_s + 0.5
    finally:
        silent.close()


def test_a_missing_port_is_reported_as_unavailable() -> None:
    with pytest.raises(ReaderUnavailable, match="no such port"):
        PN532("/dev/ttyCAMPUSGATE-none", options=FAST).open()


# --- finding cards -----------------------------------------------------------------------------
def test_a_mifare_card_is_listed_with_its_uid_atqa_and_sak(chip, emulator) -> None:
    emulator.place(MIFARE)

    target = chip.list_passive_target("A")

    assert target is not None
    assert (target.tg, target.uid, target.atqa, target.sak) == (1, MIFARE.uid, b"\x00\x04", 0x08)
    assert target.ats is None and not target.speaks_apdus


def test_an_iso14443_4_type_a_card_brings_its_ats(chip, emulator) -> None:
    emulator.place(EmulatedCard(bytes.fromhex("08112233"), apdu=Echo()))

    target = chip.list_passive_target("A")

    assert target is not None and target.speaks_apdus
    assert target.sak == 0x20 and target.ats == bytes.fromhex("0578807002")


def test_a_type_b_card_is_listed_by_its_pupi(chip, emulator) -> None:
    emulator.place(EmulatedCard(bytes.fromhex("CAFE0042"), kind="B", apdu=Echo()))

    assert chip.list_passive_target("A") is None
    target = chip.list_passive_target("B")

    assert target is not None and target.kind == "B" and target.speaks_apdus
    assert target.uid == bytes.fromhex("CAFE0042")
    assert target.atqb is not None and target.atqb[:5] == bytes.fromhex("50CAFE0042")


# --- APDUs ----------------------------------------------------------------------------------
def test_an_apdu_goes_to_the_card_and_its_answer_comes_back(chip, emulator) -> None:
    card = Echo()
    emulator.place(EmulatedCard(bytes.fromhex("08112233"), apdu=card))
    chip.list_passive_target("A")

    answer = chip.in_data_exchange(bytes.fromhex("00A4040C07A0000002471001"))

    assert card.received == [bytes.fromhex("00A4040C07A0000002471001")]
    assert answer == bytes.fromhex("011047020000A0070C04A400") + b"\x90\x00"


def test_a_long_answer_is_fetched_in_parts_with_the_mi_bit(chip, emulator) -> None:
    emulator.place(EmulatedCard(bytes.fromhex("08112233"), apdu=Echo(answer_size=700)))
    chip.list_passive_target("A")
    before = emulator.seen.commands.count(0x40)

    answer = chip.in_data_exchange(bytes.fromhex("00B0000000"))

    assert answer == bytes(i & 0xFF for i in range(700)) + b"\x90\x00"
    assert emulator.seen.commands.count(0x40) - before == 3  # 262 + 262 + 178 bytes


def test_a_long_command_is_sent_in_parts_with_the_mi_bit(chip, emulator) -> None:
    card = Echo()
    emulator.place(EmulatedCard(bytes.fromhex("08112233"), apdu=card))
    chip.list_passive_target("A")
    apdu = bytes(range(256)) * 2 + bytes(100)

    answer = chip.in_data_exchange(apdu)

    assert card.received == [apdu] and answer == apdu[::-1] + b"\x90\x00"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (0x01, CardTimeout),
        (0x02, CardTransmissionError),
        (0x14, CardAuthenticationError),
        (0x2B, CardGone),
        (0x3E, CardError),
    ],
)
def test_a_status_error_raises_its_own_card_error(chip, emulator, status, error) -> None:
    emulator.place(EmulatedCard(bytes.fromhex("08112233"), apdu=Echo()))
    chip.list_passive_target("A")
    emulator.inject(Fault(status=status))

    with pytest.raises(error) as caught:
        chip.in_data_exchange(b"\x00\xa4\x00\x00")

    assert caught.value.code == status and f"{status:#04x}" in str(caught.value)
    assert chip.in_data_exchange(b"\x00\xa4\x00\x00") == b"\x00\x00\xa4\x00\x90\x00"


def test_a_card_taken_away_after_activation_does_not_answer(chip, emulator) -> None:
    card = EmulatedCard(bytes.fromhex("08112233"), apdu=Echo())
    emulator.place(card)
    chip.list_passive_target("A")
    emulator.remove(card.uid)

    with pytest.raises(CardTimeout):
        chip.in_data_exchange(b"\x00\xa4\x00\x00")


@pytest.mark.parametrize(
    ("data", "target", "problem"), [(b"", 1, "nothing to send"), (b"\x00", 3, "targets 1 and 2")]
)
def test_bad_exchange_arguments_are_refused_before_anything_is_sent(
    chip, emulator, data, target, problem
) -> None:
    sent = len(emulator.seen.commands)

    with pytest.raises(ValueError, match=problem):
        chip.in_data_exchange(data, target)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        chip.list_passive_target("C")  # type: ignore[arg-type]

    assert len(emulator.seen.commands) == sent


# --- a noisy line ------------------------------------------------------------------------------
@pytest.mark.parametrize("checksum", ["lcs", "dcs"])
def test_an_answer_with_a_bad_checksum_is_dropped_and_asked_for_again(
    chip, emulator, checksum
) -> None:
    emulator.inject(Fault(corrupt=checksum))

    assert chip.get_firmware_version() == Firmware(0x32, 1, 6, 7)
    assert emulator.seen.host_nacks == 1 and chip.stats.bad_frames == 1


def test_an_answer_that_stays_broken_is_a_protocol_error(chip, emulator) -> None:
    emulator.inject(Fault(corrupt="dcs", corrupt_repeats=True))

    with pytest.raises(ReaderProtocolError, match="arrived broken 3 times"):
        chip.get_firmware_version()
    assert chip.get_firmware_version().ic == 0x32


def test_a_nack_from_the_chip_makes_the_driver_send_the_command_again(chip, emulator) -> None:
    emulator.inject(Fault(nack=True))

    assert chip.get_firmware_version().ic == 0x32
    assert emulator.seen.commands[-2:] == [0x02, 0x02]


def test_a_lost_command_is_sent_again_but_not_forever(chip, emulator) -> None:
    emulator.inject(Fault(silent=True))
    assert chip.get_firmware_version().ic == 0x32

    emulator.inject(*[Fault(silent=True)] * 3)
    with pytest.raises(ReaderTimeout, match="did not acknowledge command 0x02 after 3 tries"):
        chip.get_firmware_version()


def test_the_error_frame_is_a_protocol_error_and_the_next_command_works(chip, emulator) -> None:
    emulator.inject(Fault(error_frame=True))

    with pytest.raises(ReaderProtocolError, match="answered command 0x02 with an error"):
        chip.get_firmware_version()
    assert chip.get_firmware_version().ic == 0x32


def test_a_command_the_chip_cannot_parse_gets_the_error_frame(chip) -> None:
    with pytest.raises(ReaderProtocolError):
        chip.command(0x14, b"\x09")  # SAMConfiguration has no mode 9


def test_garbage_before_the_ack_is_skipped(chip, emulator) -> None:
    emulator.inject(Fault(noise=b"\x13\x37\x00\xff\x05garbage\x00\x00\xff"))

    assert chip.get_firmware_version().ic == 0x32


def test_garbage_between_commands_is_flushed(chip, emulator) -> None:
    emulator.send_noise(b"\x00\x00\xff\x06\xfa\xd5\x03" + bytes(40))
    time.sleep(0.02)

    assert chip.get_firmware_version().ic == 0x32


def test_a_half_answer_times_out_aborts_the_command_and_the_next_one_works(chip, emulator) -> None:
    emulator.inject(Fault(half=True))
    acks = emulator.seen.host_acks
    started = time.monotonic()

    with pytest.raises(ReaderTimeout, match="did not answer command 0x02 within 0.3 s"):
        chip.get_firmware_version()

    assert FAST.response_timeout_s <= time.monotonic() - started < FAST.response_timeout_s + 0.2
    assert chip.get_firmware_version().ic == 0x32
    assert emulator.seen.host_acks == acks + 1  # the abort reached the chip before the command


def test_a_slow_answer_within_the_timeout_is_waited_for(chip, emulator) -> None:
    emulator.inject(Fault(delay=FAST.response_timeout_s / 2))

    assert chip.get_firmware_version().ic == 0x32


def test_a_slow_answer_beyond_the_timeout_is_abandoned_without_confusing_the_next(
    chip, emulator
) -> None:
    emulator.place(MIFARE)
    emulator.inject(Fault(delay=FAST.response_timeout_s + 0.2))

    with pytest.raises(ReaderTimeout):
        chip.get_firmware_version()
    time.sleep(0.25)  # past the moment the late answer would have come

    target = chip.list_passive_target("A")
    assert target is not None and target.uid == MIFARE.uid


def test_a_uniformly_slow_chip_works_when_the_timeout_allows_it() -> None:
    with PN532Emulator(reply_delay=0.1) as emulator, PN532(emulator.path, options=FAST) as chip:
        emulator.place(MIFARE)
        assert chip.list_passive_target("A") is not None


# --- polling -----------------------------------------------------------------------------------
def test_a_card_held_on_the_reader_is_one_tap(chip, emulator) -> None:
    emulator.place(MIFARE)

    tap = chip.read_tap(timeout=1.0)
    again = chip.read_tap(timeout=0.3)

    assert isinstance(tap, Tap) and tap.uid == "04A1B2C3D4E5F6" and tap.kind == "iso14443a"
    assert again is None and chip.present == "04A1B2C3D4E5F6"
    assert chip.stats.sightings > 3 and chip.stats.taps == 1


def test_a_card_removed_and_tapped_again_is_two_taps(chip, emulator) -> None:
    emulator.place(MIFARE)
    first = chip.read_tap(timeout=1.0)
    emulator.remove()
    assert chip.read_tap(timeout=0.5) is None and chip.present is None

    emulator.place(MIFARE)
    second = chip.read_tap(timeout=1.0)

    assert first is not None and second is not None and second.at > first.at
    assert second.uid == first.uid


def test_a_brief_miss_does_not_count_as_a_removal(emulator) -> None:
    patient = FAST.model_copy(update={"absent_polls": 10})  # removal after ~0.2 s of misses
    emulator.place(MIFARE)
    with PN532(emulator.path, options=patient) as chip:
        assert chip.read_tap(timeout=1.0) is not None
        gone = later(0.1, emulator.remove)
        back = later(0.15, emulator.place, MIFARE)

        assert chip.read_tap(timeout=0.5) is None  # seen missing, but not long enough

    gone.join(), back.join()
    assert chip.stats.taps == 1


def later(seconds: float, action, *args) -> threading.Timer:
    timer = threading.Timer(seconds, action, args)
    timer.start()
    return timer


def test_type_b_cards_are_polled_when_configured(emulator) -> None:
    options = FAST.model_copy(update={"card_types": ("A", "B")})
    emulator.place(EmulatedCard(bytes.fromhex("CAFE0042"), kind="B", apdu=Echo()))

    with PN532(emulator.path, options=options) as chip:
        tap = chip.read_tap(timeout=1.0)

    assert tap is not None and (tap.uid, tap.kind) == ("CAFE0042", "iso14443b")


def test_polling_rides_out_a_broken_answer(chip, emulator) -> None:
    emulator.inject(Fault(half=True))
    emulator.place(MIFARE)

    tap = chip.read_tap(timeout=2.0)

    assert tap is not None and tap.uid == "04A1B2C3D4E5F6" and chip.stats.failures == 1


def test_a_chip_that_stops_answering_is_reported_unavailable(chip, emulator) -> None:
    emulator.inject(*[Fault(silent=True)] * 3 * FAST.max_failures)

    with pytest.raises(ReaderUnavailable, match="failed 5 times in a row"):
        chip.read_tap(timeout=10.0)
