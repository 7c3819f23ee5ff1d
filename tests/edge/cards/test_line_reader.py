"""Line readers: the configured format turned into contract UIDs, and the reader on a pty.

Also the common reader interface they share: the factory from a config and the open errors.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.cards.line_reader import LineOptions, LineReader, parse_line
from edge.cards.pn532 import PN532
from edge.cards.rdm6300 import RDM6300
from edge.cards.reader import ReaderConfig, ReaderError, ReaderUnavailable, make_reader
from firmware_tools.emulators.line import LineEmulator
from firmware_tools.emulators.pty_pair import PtyPair

FAST = {"window_s": 0.15, "absent_polls": 2}


@pytest.mark.parametrize(
    ("line", "options", "uid"),
    [
        ("04a2b3c4", {}, "04A2B3C4"),
        ("  04A2B3C4D5E6F7 ", {}, "04A2B3C4D5E6F7"),
        ("4A2B3C4D5", {}, "04A2B3C4D5"),  # an odd digit count is a dropped leading zero
        ("0012345678", {"number_base": "dec"}, "00BC614E"),
        ("12345678901", {"number_base": "dec"}, "02DFDC1C35"),
        ("04A2B3C4", {"reverse_bytes": True}, "C4B3A204"),
        ("UID: 04 A2 B3 C4", {"pattern": r"UID: (?P<uid>[0-9A-F ]+)"}, "04A2B3C4"),
        ("card=1234;", {"pattern": r"card=(?P<uid>\d+);", "number_base": "dec"}, "000004D2"),
    ],
)
def test_a_line_becomes_an_upper_case_hex_uid(line: str, options: dict, uid: str) -> None:
    assert parse_line(line, LineOptions(**options)) == uid


@pytest.mark.parametrize(
    ("line", "options"),
    [
        ("hello", {}),
        ("04A2B3", {}),  # 3 bytes: shorter than any card UID
        ("04A2B3C4D5E6F7A8B9C0D1", {"pattern": r"(?P<uid>\w+)"}),  # 11 bytes
        ("0x1F", {"pattern": r"(?P<uid>\w+)", "number_base": "dec"}),
        ("-12345678", {"pattern": r"(?P<uid>\S+)", "number_base": "dec"}),  # no sign
        ("١٢٣٤٥٦٧٨٩٠", {"pattern": r"(?P<uid>\S+)", "number_base": "dec"}),  # ASCII digits only
    ],
)
def test_a_line_without_a_valid_card_number_gives_nothing(line: str, options: dict) -> None:
    assert parse_line(line, LineOptions(**options)) is None


@settings(max_examples=300, deadline=None)
@given(
    line=st.text(max_size=60),
    options=st.sampled_from(
        [
            LineOptions(),
            LineOptions(number_base="dec"),
            LineOptions(pattern=r"(?P<uid>.*)"),
            LineOptions(pattern=r"(?P<uid>.*)", number_base="dec", reverse_bytes=True),
        ]
    ),
)
def test_any_text_gives_a_contract_uid_or_nothing(line: str, options: LineOptions) -> None:
    uid = parse_line(line, options)

    assert uid is None or re.fullmatch(r"(?:[0-9A-F]{2}){4,10}", uid)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"pattern": r"[0-9]+"}, "named group"),
        ({"pattern": r"(?P<uid>[0-9]+"}, "not a regular expression"),
        ({"min_bytes": 2}, "greater than or equal to 4"),
        ({"number_base": "oct"}, "'hex' or 'dec'"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_a_bad_format_is_refused_naming_the_option(options: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ReaderConfig(kind="line", port="/dev/ttyUSB0", options=options)


def test_the_factory_builds_each_kind_with_its_default_baud_rate() -> None:
    built = {
        kind: make_reader(ReaderConfig(kind=kind, port="/dev/ttyUSB0"))
        for kind in ("pn532", "rdm6300", "line")
    }

    assert [type(r) for r in built.values()] == [PN532, RDM6300, LineReader]
    assert [r.baudrate for r in built.values()] == [115200, 9600, 9600]
    custom = ReaderConfig(kind="line", port="/dev/ttyACM0", baudrate=19200, options=FAST)
    assert make_reader(custom).baudrate == 19200
    assert make_reader(custom).options == LineOptions(**FAST)


def test_options_of_another_kind_are_refused() -> None:
    with pytest.raises(ValidationError, match="options.pattern: Extra inputs"):
        ReaderConfig(kind="pn532", port="/dev/ttyUSB0", options={"pattern": "(?P<uid>.+)"})


@pytest.fixture
def emulator():
    with LineEmulator() as emulator:
        yield emulator


@pytest.fixture
def reader(emulator):
    config = ReaderConfig(kind="line", port=emulator.path, options=FAST)
    with make_reader(config) as reader:
        yield reader


def test_each_printed_line_is_a_tap(reader, emulator) -> None:
    emulator.tap("04a2b3c4", hold_s=0)

    tap = reader.read_tap(timeout=1.0)

    assert tap is not None and (tap.uid, tap.kind) == ("04A2B3C4", "unknown")


def test_the_same_card_twice_in_quick_succession_is_one_tap_and_later_two(reader, emulator):
    emulator.tap("04A2B3C4", hold_s=0)
    emulator.tap("04A2B3C4", hold_s=0)
    assert reader.read_tap(timeout=1.0) is not None
    assert reader.read_tap(timeout=0.4) is None

    emulator.tap("04A2B3C4", hold_s=0)
    assert reader.read_tap(timeout=1.0) is not None


def test_lines_that_are_not_cards_are_counted_and_skipped(reader, emulator) -> None:
    emulator.send_line("READY")
    emulator.send_noise(b"\xff" * 300)  # no end of line: noise, not a number
    emulator.send_line("")
    emulator.tap("04A2B3C4", hold_s=0)

    tap = reader.read_tap(timeout=1.0)

    assert tap is not None and tap.uid == "04A2B3C4" and reader.stats.bad_frames == 2


def test_a_reader_that_ends_lines_with_a_bare_newline_works(reader) -> None:
    with LineEmulator(end="\n", template="ID {uid}") as emulator:
        config = ReaderConfig(
            kind="line",
            port=emulator.path,
            options={**FAST, "pattern": r"ID (?P<uid>\d+)", "number_base": "dec"},
        )
        with make_reader(config) as line_reader:
            emulator.tap("3735928559", hold_s=0)
            tap = line_reader.read_tap(timeout=1.0)

    assert tap is not None and tap.uid == "DEADBEEF"


def test_a_missing_port_and_a_file_that_is_not_a_port_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ReaderUnavailable, match="cannot open /dev/ttyNONE: no such port"):
        LineReader("/dev/ttyNONE").open()
    with pytest.raises(ReaderUnavailable, match="not a serial port"):
        LineReader(str(tmp_path)).open()


def test_a_port_in_use_by_another_reader_is_refused() -> None:
    line = PtyPair()
    try:
        with LineReader(line.path), pytest.raises(ReaderUnavailable, match="another program"):
            LineReader(line.path).open()
    finally:
        line.close()


def test_reading_a_closed_reader_is_a_clear_error() -> None:
    with pytest.raises(ReaderError, match="is not open"):
        LineReader(os.devnull).read_tap(timeout=0.1)
