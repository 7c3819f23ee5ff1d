"""``gatectl reader``: test a card reader on a serial port, or emulate one on a pty.

``test`` opens the reader the way a gate does, prints what it says about itself (the PN532's
firmware) and each tap's UID on stdout (``--json``: one JSON object per line), messages on
stderr. Exit codes: 0 all the taps asked for were read, 1 fewer came before ``--timeout``,
2 the reader cannot be used (no such port, permission denied, nothing answering, bad arguments).

``emulate`` starts an emulated reader on a pseudo-terminal, prints the port to use on stdout,
and taps the given cards in turn until Ctrl-C, so a technician can try ``test`` (or a gate) with
no hardware at all.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
from enum import StrEnum
from itertools import cycle
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from edge.cards.pn532 import PN532Options
from edge.cards.reader import CardReader, ReaderConfig, ReaderError, make_reader
from firmware_tools.emulators import LineEmulator, PN532Emulator, PtyEmulator, RDM6300Emulator
from firmware_tools.emulators.pn532 import EmulatedCard

app = typer.Typer(
    help="Card readers: test one on a serial port, or emulate one on a pty.",
    no_args_is_help=True,
)
console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FEWER_TAPS, EXIT_UNUSABLE, EXIT_INTERRUPTED = 1, 2, 130


class Kind(StrEnum):
    pn532 = "pn532"
    rdm6300 = "rdm6300"
    line = "line"


_EMULATORS: dict[Kind, type[PtyEmulator]] = {
    Kind.pn532: PN532Emulator,
    Kind.rdm6300: RDM6300Emulator,
    Kind.line: LineEmulator,
}
_DEMO_CARDS = {Kind.pn532: "04A1B2C3D4E5F6", Kind.rdm6300: "0A1B2C3D4E", Kind.line: "04A2B3C4"}
_UID_BYTES = {Kind.pn532: (4, 7, 10), Kind.rdm6300: (5,), Kind.line: tuple(range(4, 11))}

KindOption = Annotated[Kind, typer.Option(help="Reader kind.", case_sensitive=False)]


def _fail(message: str, code: int = EXIT_UNUSABLE) -> typer.Exit:
    console.print(message, markup=False)
    return typer.Exit(code)


@app.command("test")
def test_reader(
    port: Annotated[str, typer.Option(metavar="PORT", help="Serial port, e.g. /dev/ttyUSB0.")],
    kind: KindOption,
    baud: Annotated[
        int | None, typer.Option(help="Baud rate (default: 115200 PN532, 9600 others).")
    ] = None,
    count: Annotated[int, typer.Option(min=1, help="Stop after this many taps.")] = 1,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Give up after this many seconds.")
    ] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Open a reader, print its firmware (PN532) and the UID of each card tapped on it."""
    options = {}
    if kind is Kind.pn532:  # the whole wait, answering included, stays within --timeout
        options["open_timeout_s"] = min(PN532Options().open_timeout_s, timeout / 3)
    try:
        config = ReaderConfig(kind=kind.value, port=port, baudrate=baud, options=options)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        flag = {"baudrate": "--baud"}.get(str(problem["loc"][0]), f"--{problem['loc'][0]}")
        raise _fail(f"{flag}: {problem['msg']}") from None
    reader = make_reader(config)
    try:
        reader.open()
    except ReaderError as exc:
        raise _fail(str(exc)) from None
    try:
        _show(as_json, {"event": "reader", **reader.info()}, _describe(reader.info()))
        console.print(f"tap a card on the reader ({count} to go, {timeout:g} s)")
        taps = _read_taps(reader, count, time.monotonic() + timeout, as_json)
    except ReaderError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        reader.close()
    if taps < count:
        raise _fail(f"{taps} of {count} taps within {timeout:g} s", EXIT_FEWER_TAPS)


def _read_taps(reader: CardReader, count: int, deadline: float, as_json: bool) -> int:
    """Print taps until ``count`` or ``deadline``; return how many came."""
    taps = 0
    while taps < count and (remaining := deadline - time.monotonic()) > 0:
        tap = reader.read_tap(min(remaining, 1.0))
        if tap is not None:
            taps += 1
            record = {"event": "tap", "n": taps, "uid": tap.uid, "card": tap.kind}
            _show(as_json, record, f"tap {taps}: {tap.uid} ({tap.kind})")
    return taps


def _describe(info: dict[str, str]) -> str:
    text = f"{info['kind']} on {info['port']} at {info['baudrate']} baud"
    return f"{text}, firmware {info['firmware']}" if "firmware" in info else text


def _show(as_json: bool, record: dict, text: str) -> None:
    print(json.dumps(record) if as_json else text, flush=True)


@app.command("emulate")
def emulate(
    kind: KindOption,
    card: Annotated[
        list[str] | None,
        typer.Option(metavar="UID", help="Card UID in hex to tap; repeat for several."),
    ] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between taps.")] = 2.0,
    cccd: Annotated[
        bool,
        typer.Option(
            "--cccd",
            help="pn532 only: also hold a test CCCD (chip ID card) on the reader, for "
            "`gatectl cccd read`; its MRZ data and CSCA certificate are printed.",
        ),
    ] = False,
) -> None:
    """Emulate a reader on a pty: print its port, then tap the cards in turn until Ctrl-C."""
    if cccd and kind is not Kind.pn532:
        raise _fail("--cccd needs --kind pn532: only the 13.56 MHz reader talks to the chip")
    cards = [_card_uid(kind, uid) for uid in card or [_DEMO_CARDS[kind]]]
    hold = min(interval / 2, 1.0)
    # Started in the background by a script, the shell may have us ignore SIGINT; and a
    # service manager stops with SIGTERM. Either way: stop cleanly.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    with _EMULATORS[kind]() as emulator, tempfile.TemporaryDirectory() as scratch:
        print(emulator.path, flush=True)
        console.print(
            f"{kind.value} emulator on {emulator.path}; try: "
            f"gatectl reader test --port {emulator.path} --kind {kind.value}  (Ctrl-C stops)"
        )
        try:
            if cccd:  # the ID card stays in the field, as on an enrollment desk; no other taps
                _hold_test_cccd(emulator, Path(scratch), emulator.path)
                threading.Event().wait()
            for uid in cycle(cards):
                emulator.tap(uid, hold)
                console.print(f"tapped {uid}")
                time.sleep(interval - hold)
        except KeyboardInterrupt:
            console.print("emulator stopped")


def _hold_test_cccd(emulator: PN532Emulator, scratch: Path, port: str) -> None:
    """Put a generated test CCCD on the emulated reader and say how to read it."""
    from firmware_tools.emulators.emrtd import EmrtdCard
    from firmware_tools.emulators.emrtd_data import build_document

    document = build_document()
    card = EmrtdCard(document)
    emulator.place(EmulatedCard(card.uid, apdu=card, ats=card.ats))
    csca = scratch / "test-csca.pem"
    csca.write_bytes(document.pki.csca_pem())
    console.print(
        f"test CCCD held on the reader; try: gatectl cccd read --port {port} "
        f"--mrz-doc {document.mrz_document_number} --mrz-dob {document.mrz_date_of_birth} "
        f"--mrz-expiry {document.mrz_date_of_expiry} --csca {csca}"
    )


def _card_uid(kind: Kind, uid: str) -> str:
    """``uid`` normalised, or exit 2 if it cannot be a card of this kind."""
    try:
        size = len(bytes.fromhex(uid))
    except ValueError:
        raise _fail(f"--card {uid}: not hexadecimal") from None
    if size not in _UID_BYTES[kind]:
        sizes = ", ".join(str(n) for n in _UID_BYTES[kind])
        raise _fail(f"--card {uid}: a {kind.value} card UID has {sizes} bytes, not {size}")
    return uid.upper()
