"""``gatectl reader test`` and ``emulate``, as a technician runs them, over real ptys."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from firmware_tools.cli import app
from firmware_tools.emulators import LineEmulator, PN532Emulator, PtyPair, RDM6300Emulator

GATECTL = Path(sys.executable).parent / "gatectl"
runner = CliRunner()


def gatectl(*args: str):
    return runner.invoke(app, ["reader", *args])


def later(seconds: float, action, *args) -> threading.Timer:
    timer = threading.Timer(seconds, action, args)
    timer.start()
    return timer


def one_line_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert text in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_pn532_shows_its_firmware_and_each_tap() -> None:
    with PN532Emulator() as emulator:
        port = emulator.path
        first = later(0.1, emulator.tap, "04A1B2C3D4E5F6", 0.3)
        second = later(0.5, emulator.tap, "08112233", 0.3)
        result = gatectl("test", "--port", port, "--kind", "pn532", "--count", "2")
        first.join(), second.join()

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"pn532 on {port} at 115200 baud, firmware PN532 v1.6 (ISO14443A, ISO14443B, ISO18092)",
        "tap 1: 04A1B2C3D4E5F6 (iso14443a)",
        "tap 2: 08112233 (iso14443a)",
    ]


def test_an_rdm6300_in_json() -> None:
    with RDM6300Emulator() as emulator:
        port = emulator.path
        emulator.place("0A1B2C3D4E")
        result = gatectl("test", "--port", port, "--kind", "rdm6300", "--json")

    assert result.exit_code == 0, result.output
    reader, tap = (json.loads(line) for line in result.stdout.splitlines())
    assert reader == {"event": "reader", "kind": "rdm6300", "port": port, "baudrate": "9600"}
    assert tap == {"event": "tap", "n": 1, "uid": "0A1B2C3D4E", "card": "em4100"}


def test_a_line_reader_at_its_own_baud_rate() -> None:
    with LineEmulator(baudrate=19200) as emulator:
        tap = later(0.3, emulator.tap, "04a2b3c4", 0)
        result = gatectl("test", "--port", emulator.path, "--kind", "line", "--baud", "19200")
        tap.join()

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "tap 1: 04A2B3C4 (unknown)"


def test_fewer_taps_than_asked_within_the_timeout_exits_1() -> None:
    with RDM6300Emulator() as emulator:
        result = gatectl("test", "--port", emulator.path, "--kind", "rdm6300", "--timeout", "0.5")

    assert result.exit_code == 1 and "0 of 1 taps within 0.5 s" in result.stderr


def test_a_missing_port_exits_2_with_one_line() -> None:
    result = gatectl("test", "--port", "/dev/ttyCAMPUSGATE-none", "--kind", "pn532")

    one_line_error(result, 2, "cannot open /dev/ttyCAMPUSGATE-none: no such port")


def test_no_pn532_answering_exits_2_with_one_line() -> None:
    silent = PtyPair()
    try:
        result = gatectl("test", "--port", silent.path, "--kind", "pn532", "--timeout", "0.6")
    finally:
        silent.close()

    one_line_error(result, 2, f"no PN532 answered on {silent.path}")


def test_an_impossible_baud_rate_exits_2_with_one_line() -> None:
    result = gatectl("test", "--port", "/dev/ttyUSB0", "--kind", "line", "--baud", "50")

    one_line_error(result, 2, "--baud: Input should be greater than or equal to 1200")


def test_permission_denied_exits_2_with_one_line() -> None:
    line = PtyPair()
    os.chmod(line.path, 0)
    command = [str(GATECTL), "reader", "test", "--port", line.path, "--kind", "line"]
    if os.geteuid() == 0:  # root reads anything: drop the capability that lets it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        dropped = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={dropped}", f"--inh-caps={dropped}", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        line.close()

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"cannot open {line.path}: permission denied " + (
        "(add the user to the 'dialout' group)"
    )


def test_a_card_that_cannot_be_of_that_kind_is_refused_by_emulate() -> None:
    result = gatectl("emulate", "--kind", "rdm6300", "--card", "04A1B2C3")

    one_line_error(result, 2, "--card 04A1B2C3: a rdm6300 card UID has 5 bytes, not 4")


def test_emulate_prints_a_port_that_test_reads_and_stops_cleanly_on_ctrl_c() -> None:
    cards = ["--card", "04a1b2c3", "--card", "08112233445566"]
    emulate = subprocess.Popen(
        [str(GATECTL), "reader", "emulate", "--kind", "pn532", "--interval", "0.4", *cards],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = emulate.stdout.readline().strip()
        result = gatectl("test", "--port", port, "--kind", "pn532", "--count", "2", "--json")
    finally:
        emulate.send_signal(signal.SIGINT)
        _, messages = emulate.communicate(timeout=10)

    assert port.startswith("/dev/pts/")
    assert result.exit_code == 0, result.output
    uids = [json.loads(line).get("uid") for line in result.stdout.splitlines()[1:]]
    assert sorted(uids) == ["04A1B2C3", "08112233445566"]
    assert emulate.returncode == 0 and "emulator stopped" in messages
    assert f"gatectl reader test --port {port} --kind pn532" in messages


def test_emulate_cccd_holds_an_id_card_that_the_printed_command_reads() -> None:
    emulate = subprocess.Popen(
        [str(GATECTL), "reader", "emulate", "--kind", "pn532", "--cccd"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        emulate.stdout.readline()
        hint = ""
        while "gatectl cccd read" not in hint:
            hint = emulate.stderr.readline()
            assert hint, "emulate ended without printing how to read the card"
        command = hint[hint.index("gatectl cccd read") :].split()
        read = subprocess.run(
            [str(GATECTL), *command[1:]], capture_output=True, text=True, timeout=60
        )
    finally:
        emulate.send_signal(signal.SIGINT)
        _, messages = emulate.communicate(timeout=10)

    assert read.returncode == 0, read.stderr
    card = json.loads(read.stdout)
    assert card["passive_authentication"]["passed"] is True
    assert card["personal_data"]["full_name"] == "Nguyễn Thị Minh Châu"
    assert emulate.returncode == 0 and "emulator stopped" in messages


def test_only_a_pn532_emulator_can_hold_a_cccd() -> None:
    result = gatectl("emulate", "--kind", "rdm6300", "--cccd")
    one_line_error(result, 2, "--cccd needs --kind pn532")
