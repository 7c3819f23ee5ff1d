"""``gatectl cccd``: read an emulated CCCD through the emulated PN532 on a real pty at 115200
baud, as a technician would, and parse printed QR codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from firmware_tools.cccd_cli import app
from firmware_tools.emulators.emrtd import EmrtdCard
from firmware_tools.emulators.emrtd_data import EmrtdDocument, build_document
from firmware_tools.emulators.pn532 import EmulatedCard, PN532Emulator

GATECTL = Path(sys.executable).parent / "gatectl"


@pytest.fixture(scope="module")
def document() -> EmrtdDocument:
    return build_document()


@pytest.fixture
def reader_port(document: EmrtdDocument) -> Iterator[str]:
    card = EmrtdCard(document)
    with PN532Emulator() as emulator:
        emulator.place(EmulatedCard(card.uid, apdu=card, ats=card.ats))
        yield emulator.path


def read(port: str, document: EmrtdDocument, *extra: str) -> subprocess.CompletedProcess:
    args = [
        str(GATECTL), "cccd", "read", "--port", port,
        "--mrz-doc", document.mrz_document_number,
        "--mrz-dob", document.mrz_date_of_birth,
        *extra,
    ]  # fmt: skip
    if "--mrz-expiry" not in extra:
        args += ["--mrz-expiry", document.mrz_date_of_expiry]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_read_prints_the_card_as_json_and_saves_the_photo(
    reader_port: str, document: EmrtdDocument, tmp_path: Path
) -> None:
    csca = tmp_path / "csca.pem"
    csca.write_bytes(document.pki.csca_pem())
    photo = tmp_path / "face.png"
    done = read(reader_port, document, "--csca", str(csca), "--photo", str(photo))
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert card["personal_data"]["full_name"] == "Nguyễn Thị Minh Châu"
    assert card["personal_data"]["residence"] == document.person.residence
    assert card["mrz"]["document_number"] == "208001234"
    assert card["passive_authentication"]["passed"] is True
    assert card["face"] == {"format": "jpeg", "width": 240, "height": 320, "saved_to": str(photo)}
    assert cv2.imread(str(photo)).shape == (320, 240, 3)
    assert "passive authentication: PASSED" in done.stderr


def test_wrong_mrz_data_is_access_denied(reader_port: str, document: EmrtdDocument) -> None:
    done = read(reader_port, document, "--mrz-expiry", "330916")
    assert done.returncode == 3
    assert "access denied: the MRZ data does not open this card" in done.stderr
    assert done.stdout == ""


def test_bad_arguments_fail_before_the_port_is_opened() -> None:
    args = ["--port", "/dev/does-not-exist", "--mrz-doc", "208001234", "--mrz-dob", "080915"]
    result = CliRunner().invoke(app, ["read", *args, "--mrz-expiry", "331350"])
    assert result.exit_code == 2 and "date of expiry '331350' is not a date" in result.stderr


def test_an_unusable_photo_name_is_refused_before_reading() -> None:
    args = ["--port", "/dev/does-not-exist", "--mrz-doc", "208001234", "--mrz-dob", "080915"]
    result = CliRunner().invoke(app, ["read", *args, "--mrz-expiry", "330915", "--photo", "a.xyz"])
    assert result.exit_code == 2 and "use a .jpg, .jp2 or .png name" in result.stderr


def test_a_missing_reader_and_an_empty_field_are_reported(document: EmrtdDocument) -> None:
    key = ["--mrz-doc", "208001234", "--mrz-dob", "080915", "--mrz-expiry", "330915"]
    result = CliRunner().invoke(app, ["read", "--port", "/dev/does-not-exist", *key])
    assert result.exit_code == 1 and "reading the card failed" in result.stderr
    with PN532Emulator() as emulator:
        result = CliRunner().invoke(app, ["read", "--port", emulator.path, *key, "--wait", "0.3"])
    assert (
        result.exit_code == 1 and "no card was placed on the reader within 0.3 s" in result.stderr
    )


def test_qr_prints_the_fields_as_json() -> None:
    text = "001090123456|012345678|Trần Văn Nam|01011990|Nam|Quận 1, TP. Hồ Chí Minh|15042021"
    result = CliRunner().invoke(app, ["qr", text])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["full_name"] == "Trần Văn Nam"


def test_qr_with_the_wrong_field_count_exits_2() -> None:
    result = CliRunner().invoke(app, ["qr", "001090123456|Trần Văn Nam"])
    assert result.exit_code == 2 and "this text has 2" in result.stderr
