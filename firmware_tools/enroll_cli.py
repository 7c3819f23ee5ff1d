"""``gatectl enroll``: the enrollment desk — a student's face from photos or from their CCCD.

Everything goes through the school server's API with an admin's token: the student is found by
code, the photos (or the CCCD's DG2 portrait) are uploaded with the consent given at the desk,
and the server analyses them with the gates' own model pack and stores only templates. The
server refuses a whole request if any photo has a problem and says why for each photo; this
command shows that per photo.

With ``--cccd`` the chip is read through the PN532 on ``--port`` (BAC with the MRZ data, as
``gatectl cccd read``), and its DG13 must match the student record
(:mod:`firmware_tools.identity_match`) before anything is uploaded: a card that is not the
student's, or whose data fails passive authentication, is refused and nothing leaves the desk.
The portrait is never written to disk.

Exit codes: 0 templates stored, 1 refused or failed (nothing stored), 2 bad arguments.
"""

from __future__ import annotations

import json
import mimetypes
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console

from edge.cards.cccd.errors import AccessDenied, CccdError, CscaError, MrzError
from edge.cards.cccd.mrz import MrzKey
from edge.cards.cccd.passive_auth import load_csca_certificates
from edge.cards.cccd.reader import CccdReadResult
from edge.cards.pn532 import CardError
from edge.cards.reader import ReaderError
from firmware_tools.cccd_cli import read_card
from firmware_tools.identity_match import match_student
from firmware_tools.server_api import ApiError, ServerApi
from firmware_tools.server_options import AsJson, ServerCa, ServerUrl, server_api
from firmware_tools.server_transfer import upload

console = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

EXIT_REFUSED, EXIT_USAGE = 1, 2
MAX_PHOTOS = 10

AdminToken = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="CAMPUSGATE_TOKEN",
        metavar="TOKEN",
        help="An admin's API token from POST /api/v1/auth/tokens (env CAMPUSGATE_TOKEN).",
    ),
]


class ConsentRole(StrEnum):
    guardian = "guardian"
    student = "student"
    admin = "admin"


def _fail(message: str, code: int = EXIT_REFUSED) -> typer.Exit:
    console.print(message, markup=False)
    return typer.Exit(code)


def find_student(api: ServerApi, code: str) -> dict[str, Any]:
    """The student whose code is exactly ``code`` (the API's search also matches names)."""
    found = api.call("GET", f"/students?q={quote(code)}&limit=2000")
    for student in found:
        if student["code"] == code:
            return student
    raise ApiError(
        f"không tìm thấy học sinh {code} / no student with code {code} (that this account may see)",
        404,
    )


def _photo_files(photos: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    if len(photos) > MAX_PHOTOS:
        raise _fail(f"at most {MAX_PHOTOS} photos at a time, not {len(photos)}", EXIT_USAGE)
    files = []
    for photo in photos:
        try:
            data = photo.read_bytes()
        except OSError as exc:
            raise _fail(f"--photo {photo}: {exc.strerror}", EXIT_USAGE) from None
        files.append(_photo(photo.name, data))
    return files


def _photo(name: str, data: bytes) -> tuple[str, tuple[str, bytes, str]]:
    """One part of the ``photos`` form field."""
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return "photos", (name, data, kind)


def _read_cccd(port: str, key: MrzKey, csca: list[Path], baud: int, wait: float) -> CccdReadResult:
    try:
        trusted = load_csca_certificates(csca)
    except CscaError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    try:
        result = read_card(port, key, trusted, baud=baud, wait=wait)
    except AccessDenied as exc:
        raise _fail(f"{exc}; check --mrz-doc, --mrz-dob and --mrz-expiry") from None
    except (CccdError, CardError, ReaderError) as exc:
        raise _fail(f"reading the card failed: {exc}") from None
    verdict = result.passive_authentication
    altered = [f"DG{c.number} {c.status}" for c in verdict.data_groups if c.status != "ok"]
    if altered or not verdict.signature_ok or verdict.chain == "failed":
        problems = [*altered, verdict.signature_error or "", verdict.chain_error or ""]
        raise _fail(
            "refused: the card's data fails passive authentication ("
            + "; ".join(p for p in problems if p)
            + "); nothing was uploaded"
        )
    if verdict.chain == "not checked":
        console.print("warning: the card's signer was not checked (give --csca to check it)")
    if result.face is None:
        raise _fail("refused: this card holds no portrait (DG2); nothing was uploaded")
    return result


def _show_result(
    status: int,
    answer: dict[str, Any],
    names: list[str],
    student: dict[str, Any],
    as_json: bool,
    extra: dict[str, Any],
) -> None:
    """Print what the server did with each photo; exit 1 unless templates were stored."""
    stored = status == 201
    detail = answer.get("detail") if not stored else None
    problems = detail.get("problems", []) if isinstance(detail, dict) else []
    if not stored and not problems:
        message = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)
        problems = [{"code": "refused", "photo": None, "vi": message, "en": message}]
    photos = [
        {
            "photo": n,
            "file": name,
            "problems": [p for p in problems if p.get("photo") == n],
        }
        for n, name in enumerate(names, start=1)
    ]
    general = [p for p in problems if p.get("photo") is None]
    if as_json:
        document = {
            "student": {k: student[k] for k in ("id", "code", "full_name")},
            "stored": stored,
            "templates": answer.get("templates", 0) if stored else 0,
            "model_pack": answer.get("model_pack"),
            "photos": photos,
            "problems": general,
            **extra,
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        for photo in photos:
            label = f"photo {photo['photo']} ({photo['file']})"
            if not photo["problems"]:
                what = "one face, template stored" if stored else "one usable face"
                out.print(f"✔ {label}: {what}", markup=False)
            for problem in photo["problems"]:
                out.print(f"✘ {label}: {problem['vi']} / {problem['en']}", markup=False)
        for problem in general:
            out.print(f"✘ {problem['vi']} / {problem['en']}", markup=False)
    who = f"{student['code']} ({student['full_name']})"
    if not stored:
        raise _fail(f"refused: nothing was stored for {who}")
    console.print(
        f"{answer['templates']} template(s) of {answer['model_pack']} stored for {who}; "
        f"galleries republished: {', '.join(g['site'] for g in answer['galleries']) or 'none'}",
        markup=False,
    )


def enroll(
    student: Annotated[str, typer.Option(metavar="CODE", help="The student's code.")],
    consent_by: Annotated[
        str,
        typer.Option(
            metavar="NAME", help="Who gave the consent to keep the face template, as they signed."
        ),
    ],
    server: ServerUrl,
    token: AdminToken,
    photo: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE", help="A photo of the student alone; repeat (up to 10)."),
    ] = None,
    cccd: Annotated[
        bool, typer.Option("--cccd", help="Use the portrait from the student's CCCD chip.")
    ] = False,
    port: Annotated[
        str | None, typer.Option(metavar="PORT", help="--cccd: serial port of the PN532.")
    ] = None,
    mrz_doc: Annotated[
        str | None,
        typer.Option("--mrz-doc", metavar="N", help="--cccd: last 9 digits of the ID number."),
    ] = None,
    mrz_dob: Annotated[
        str | None,
        typer.Option(
            "--mrz-dob", "--mrz-birth", metavar="YYMMDD", help="--cccd: date of birth (MRZ)."
        ),
    ] = None,
    mrz_expiry: Annotated[
        str | None,
        typer.Option("--mrz-expiry", metavar="YYMMDD", help="--cccd: date of expiry (MRZ)."),
    ] = None,
    csca: Annotated[
        list[Path] | None,
        typer.Option(metavar="FILE", help="--cccd: trusted CSCA certificate; repeat."),
    ] = None,
    baud: Annotated[int, typer.Option(metavar="RATE", help="--cccd: PN532 baud rate.")] = 115200,
    wait: Annotated[
        float, typer.Option(metavar="SECONDS", help="--cccd: how long to wait for the card.")
    ] = 10.0,
    consent_role: Annotated[
        ConsentRole,
        typer.Option(help="Who consented: the guardian, the student, or an admin for them."),
    ] = ConsentRole.guardian,
    server_ca: ServerCa = None,
    as_json: AsJson = False,
) -> None:
    """Enroll a student's face from photos (--photo) or from their CCCD chip (--cccd), with
    the consent given at the desk. Exit 1 if the server or the card check refuses."""
    if bool(photo) == cccd:
        raise _fail("give either --photo FILE (one or more) or --cccd", EXIT_USAGE)
    key = None
    if cccd:
        missing = [
            flag
            for flag, value in (
                ("--port", port),
                ("--mrz-doc", mrz_doc),
                ("--mrz-dob", mrz_dob),
                ("--mrz-expiry", mrz_expiry),
            )
            if not value
        ]
        if missing:
            raise _fail(f"--cccd needs {', '.join(missing)}", EXIT_USAGE)
        try:
            key = MrzKey(mrz_doc or "", mrz_dob or "", mrz_expiry or "")
        except MrzError as exc:
            raise _fail(str(exc), EXIT_USAGE) from None
    files = _photo_files(photo or [])
    api = server_api(server, token, server_ca)
    fields = {"given_by": consent_role.value, "given_by_name": consent_by}
    extra: dict[str, Any] = {}
    try:
        record = find_student(api, student)
        if key is not None:
            card = _read_cccd(port or "", key, csca or [], baud, wait)
            identity = match_student(card.personal_data, record)
            for confirmed in identity.confirmed:
                console.print(f"✔ card and record agree: {confirmed}", markup=False)
            if not identity.ok:
                for mismatch in identity.mismatches:
                    console.print(f"✘ {mismatch}", markup=False)
                raise _fail(
                    f"refused: this CCCD does not match student {student}; nothing was uploaded"
                )
            assert card.face is not None
            files = [_photo(f"cccd{card.face.suffix}", card.face.data)]
            fields["source"] = "cccd"
            extra["identity"] = {"confirmed": identity.confirmed}
        with console.status(f"uploading {len(files)} photo(s) for {student}…"):
            status, answer = upload(api, f"/students/{record['id']}/faces", files, fields)
    except ApiError as exc:
        raise _fail(f"error: {exc}") from None
    names = [name for _, (name, _, _) in files]
    _show_result(status, answer, names, record, as_json, extra)
