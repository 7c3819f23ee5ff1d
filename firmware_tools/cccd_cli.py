"""``gatectl cccd``: read a CCCD's chip through a PN532, or parse the QR code printed on it.

``read`` prints the chip's DG1 (MRZ) and DG13 (personal data) fields as JSON on stdout with the
passive-authentication verdict; progress and a one-line verdict go to stderr, so the JSON can be
piped. Exit codes: 0 read and not contradicted, 1 reader or card trouble, 2 bad arguments,
3 access denied (wrong MRZ data), 4 passive authentication found the data altered or signed by
an unknown CSCA. Without ``--csca`` the chain is "not checked" and the exit code stays 0.
"""

from __future__ import annotations

import json
import time
from itertools import cycle
from pathlib import Path
from typing import Annotated

import cv2
import typer
from cryptography import x509
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from edge.cards.cccd.errors import AccessDenied, CccdError, CscaError, MrzError, QrError
from edge.cards.cccd.mrz import MrzKey
from edge.cards.cccd.passive_auth import PassiveAuthResult, load_csca_certificates
from edge.cards.cccd.qr import parse_qr
from edge.cards.cccd.reader import CccdReader, CccdReadResult
from edge.cards.pn532 import PN532, CardError, Target
from edge.cards.reader import ReaderError

app = typer.Typer(
    help="The chip citizen ID card (CCCD): read its chip, parse its printed QR code.",
    no_args_is_help=True,
)
console = Console(stderr=True)

EXIT_TROUBLE, EXIT_USAGE, EXIT_DENIED, EXIT_REJECTED = 1, 2, 3, 4
_RAW_SUFFIXES = {"jpeg": {".jpg", ".jpeg"}, "jpeg2000": {".jp2"}}


def _fail(message: str, code: int) -> typer.Exit:
    console.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def _wait_for_chip(pn532: PN532, seconds: float) -> Target:
    """Poll for a type A or B card until one that speaks APDUs is in the field."""
    deadline = time.monotonic() + seconds
    console.print(f"waiting up to {seconds:g} s for a card on the reader…")
    kinds = cycle(("A", "B"))
    while True:
        target = pn532.list_passive_target(next(kinds))
        if target is not None and target.speaks_apdus:
            return target
        if target is not None:
            raise _fail(
                f"the card {target.uid.hex().upper()} is not an ISO 14443-4 chip card, so it "
                "cannot be a CCCD",
                EXIT_TROUBLE,
            )
        if time.monotonic() > deadline:
            raise _fail(f"no card was placed on the reader within {seconds:g} s", EXIT_TROUBLE)
        time.sleep(0.05)


def _check_photo_path(out: Path) -> None:
    """Refuse an unusable --photo before the card is read, not after."""
    if not out.parent.is_dir():
        raise _fail(f"{out}: the folder {out.parent} does not exist", EXIT_USAGE)
    if not cv2.haveImageWriter(str(out)):
        raise _fail(f"{out}: use a .jpg, .jp2 or .png name for the photo", EXIT_USAGE)


def _save_photo(result: CccdReadResult, out: Path) -> None:
    """The portrait as stored when the suffix matches its format, else re-encoded by suffix."""
    face = result.face
    if face is None or result.face_rgb is None:
        raise _fail("this card holds no face image (DG2); nothing written", EXIT_TROUBLE)
    try:
        if out.suffix.lower() in _RAW_SUFFIXES[face.format]:
            out.write_bytes(face.data)
        elif not cv2.imwrite(str(out), cv2.cvtColor(result.face_rgb, cv2.COLOR_RGB2BGR)):
            raise OSError("OpenCV could not write it")
    except OSError as exc:
        raise _fail(f"{out}: {exc.strerror or exc}", EXIT_TROUBLE) from None


def _verdict_line(verdict: PassiveAuthResult) -> str:
    if verdict.passed:
        return f"passive authentication: PASSED (signed by {verdict.signer})"
    problems = [f"DG{c.number} {c.status}" for c in verdict.data_groups if c.status != "ok"]
    if verdict.signature_error:
        problems.append(verdict.signature_error)
    if verdict.chain != "ok":
        problems.append(f"chain {verdict.chain}: {verdict.chain_error}")
    return "passive authentication: NOT PASSED (" + "; ".join(problems) + ")"


def read_card(
    port: str, key: MrzKey, trusted: list[x509.Certificate], *, baud: int, wait: float
) -> CccdReadResult:
    """Wait up to ``wait`` seconds for a chip on the PN532 at ``port`` and read it with BAC,
    showing each file's progress on stderr. Raises what :meth:`CccdReader.read` raises,
    :class:`CardError` / :class:`ReaderError` for reader trouble, and ``typer.Exit(1)`` when
    no chip card came."""
    columns = (TextColumn("{task.description:<13}"), BarColumn(), DownloadColumn())
    with PN532(port, baudrate=baud) as pn532, Progress(*columns, console=console) as bar:
        target = _wait_for_chip(pn532, wait)
        tasks: dict[str, TaskID] = {}

        def show(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        reader = CccdReader(
            lambda apdu: pn532.in_data_exchange(apdu, target.tg), csca=trusted, progress=show
        )
        return reader.read(key)


@app.command("read")
def read(
    port: Annotated[str, typer.Option(metavar="PORT", help="Serial port of the PN532 (HSU).")],
    mrz_doc: Annotated[
        str,
        typer.Option(
            "--mrz-doc",
            metavar="N",
            help="MRZ document number; for a CCCD the last 9 digits of the 12-digit ID number.",
        ),
    ],
    mrz_dob: Annotated[
        str, typer.Option("--mrz-dob", metavar="YYMMDD", help="Date of birth as in the MRZ.")
    ],
    mrz_expiry: Annotated[
        str, typer.Option("--mrz-expiry", metavar="YYMMDD", help="Date of expiry as in the MRZ.")
    ],
    photo: Annotated[
        Path | None,
        typer.Option(metavar="OUT", help="Write the portrait here (.jpg/.jp2 as stored, or .png)."),
    ] = None,
    csca: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE", help="Trusted CSCA certificate (PEM or DER); repeat."),
    ] = None,
    baud: Annotated[int, typer.Option(metavar="RATE", help="PN532 HSU baud rate.")] = 115200,
    wait: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long to wait for a card.")
    ] = 10.0,
) -> None:
    """Read a CCCD chip with BAC and print DG1/DG13 as JSON with the passive-auth verdict."""
    try:
        key = MrzKey(mrz_doc, mrz_dob, mrz_expiry)
        trusted = load_csca_certificates(csca or [])
    except (MrzError, CscaError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    if photo is not None:
        _check_photo_path(photo)
    try:
        result = read_card(port, key, trusted, baud=baud, wait=wait)
    except AccessDenied as exc:
        raise _fail(str(exc), EXIT_DENIED) from None
    except (CccdError, CardError, ReaderError) as exc:
        raise _fail(f"reading the card failed: {exc}", EXIT_TROUBLE) from None
    if photo is not None:
        _save_photo(result, photo)
    verdict = result.passive_authentication
    document = result.model_dump(mode="json")
    if photo is not None:
        document["face"]["saved_to"] = str(photo)
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    console.print(f"read in {result.seconds:.2f} s; " + _verdict_line(verdict), markup=False)
    tampered = not verdict.signature_ok or any(c.status != "ok" for c in verdict.data_groups)
    if tampered or verdict.chain == "failed":
        raise typer.Exit(EXIT_REJECTED)


@app.command("qr")
def qr(
    text: Annotated[str, typer.Argument(help="The QR code's text, quoted (fields split by |).")],
) -> None:
    """Parse the QR code printed on a CCCD and print its fields as JSON."""
    try:
        parsed = parse_qr(text)
    except QrError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    typer.echo(json.dumps(parsed.model_dump(mode="json"), ensure_ascii=False, indent=2))
