"""Reading a CCCD (or any ICAO 9303 eMRTD with BAC) end to end over a :data:`Transceive`.

The order is the one the chip imposes: EF.CardAccess (before access control, to learn whether
PACE is offered), SELECT the eMRTD application, BAC with the MRZ key, then — all in secure
messaging — EF.COM, DG1, DG2, DG13 and EF.SOD, and finally passive authentication. Passive
authentication runs before the data groups are parsed, so a data group that is both altered and
unparseable is reported as altered, not merely as malformed.

Personal data never goes to the log: only file names, sizes and timings do.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field

from edge.cards.cccd.apdu import (
    Channel,
    PlainChannel,
    Transceive,
    expect_ok,
    read_file,
    select_application,
)
from edge.cards.cccd.bac import BacKeys, Random, authenticate
from edge.cards.cccd.errors import CardError, LdsError
from edge.cards.cccd.lds import (
    EF_CARD_ACCESS,
    EF_COM,
    EF_SOD,
    EMRTD_AID,
    FaceImage,
    PersonalData,
    dg_file_id,
    parse_dg1,
    parse_dg2,
    parse_dg13,
    parse_ef_com,
)
from edge.cards.cccd.mrz import MrzKey, Td1Mrz
from edge.cards.cccd.pace import PaceInfo, parse_card_access
from edge.cards.cccd.passive_auth import PassiveAuthResult, verify
from edge.cards.cccd.sod import parse_sod

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CHUNK = 0xDF
"""READ BINARY size: 223 data bytes become a 244-byte SM response, which with the PN532's
InDataExchange header still fits one normal (non-extended) PN532 frame."""

WANTED_DATA_GROUPS = (1, 2, 13)

FileProgress = Callable[[str, int, int], None]
"""Called with (file name, bytes read, file size) as files are read."""


class CccdReadResult(BaseModel):
    """Everything one read of a CCCD yields."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    data_groups: list[int]
    """Data groups the chip holds, from EF.COM."""
    mrz: Td1Mrz
    personal_data: PersonalData | None
    face: FaceImage | None
    face_rgb: np.ndarray | None = Field(default=None, exclude=True, repr=False)
    """The decoded portrait (H×W×3 uint8 RGB)."""
    passive_authentication: PassiveAuthResult
    pace: list[PaceInfo]
    """PACE variants EF.CardAccess offers (the read itself used BAC)."""
    seconds: float


def _parse(
    files: dict[int, bytes],
    number: int,
    parser: Callable[[bytes], T],
    verdict: PassiveAuthResult,
) -> T | None:
    """Parse data group ``number`` if it was read; a parse error says whether the group also
    failed passive authentication (an altered file, not just an odd one)."""
    if number not in files:
        return None
    try:
        return parser(files[number])
    except LdsError as exc:
        status = next(check.status for check in verdict.data_groups if check.number == number)
        if status == "ok":
            raise
        raise LdsError(f"{exc} (DG{number} also fails passive authentication: {status})") from None


def _decoded_face(data: bytes) -> tuple[FaceImage, np.ndarray]:
    """DG2's portrait and its pixels: an image that does not decode is a DG2 error too."""
    face = parse_dg2(data)
    return face, face.to_rgb()


class CccdReader:
    """Reads CCCDs through ``transceive`` (one APDU in, one response out).

    ``csca``: trusted country signing CA certificates; without them passive authentication
    checks hashes and signature but cannot pass. ``random`` supplies the terminal's nonce and
    key share (tests fix it to replay ICAO's worked example).
    """

    def __init__(
        self,
        transceive: Transceive,
        *,
        csca: Sequence[x509.Certificate] = (),
        chunk: int = DEFAULT_CHUNK,
        random: Random = os.urandom,
        progress: FileProgress | None = None,
    ) -> None:
        if not 1 <= chunk <= 0xDF:
            raise ValueError(f"chunk must be 1-223 bytes, got {chunk}")
        self._plain = PlainChannel(transceive)
        self._csca = list(csca)
        self._chunk = chunk
        self._random = random
        self._progress = progress

    def _read(self, channel: Channel, fid: int, name: str) -> bytes:
        progress = self._progress
        report = (lambda done, total: progress(name, done, total)) if progress else None
        data = read_file(channel, fid, name, chunk=self._chunk, progress=report)
        log.debug("cccd file read", extra={"file": name, "bytes": len(data)})
        return data

    def _pace_info(self) -> list[PaceInfo]:
        """PACEInfos from EF.CardAccess; a chip without a readable one offers BAC only."""
        try:
            return parse_card_access(self._read(self._plain, EF_CARD_ACCESS, "EF.CardAccess"))
        except CardError as exc:
            log.debug("no EF.CardAccess", extra={"reason": str(exc)})
        except LdsError as exc:
            log.warning("EF.CardAccess is malformed; ignoring it", extra={"reason": str(exc)})
        return []

    def read(self, key: MrzKey) -> CccdReadResult:
        """Open the chip with ``key`` (BAC), read it, and run passive authentication.

        Raises :class:`~edge.cards.cccd.errors.AccessDenied` after one refused mutual
        authentication, and other :class:`~edge.cards.cccd.errors.CccdError` subclasses for
        card, secure-messaging and format errors.
        """
        started = time.perf_counter()
        pace = self._pace_info()
        expect_ok(
            self._plain.transmit(select_application(EMRTD_AID)), "selecting the eMRTD application"
        )
        channel = authenticate(self._plain, BacKeys.from_mrz(key), self._random)
        com = parse_ef_com(self._read(channel, EF_COM, "EF.COM"))
        if 1 not in com.data_groups:
            raise LdsError("EF.COM does not list DG1, which every eMRTD must hold")
        files = {
            number: self._read(channel, dg_file_id(number), f"DG{number}")
            for number in WANTED_DATA_GROUPS
            if number in com.data_groups
        }
        sod = parse_sod(self._read(channel, EF_SOD, "EF.SOD"))
        verdict = verify(sod, files, self._csca)

        face, face_rgb = _parse(files, 2, _decoded_face, verdict) or (None, None)
        result = CccdReadResult(
            data_groups=com.data_groups,
            mrz=_parse(files, 1, parse_dg1, verdict),
            personal_data=_parse(files, 13, parse_dg13, verdict),
            face=face,
            face_rgb=face_rgb,
            passive_authentication=verdict,
            pace=pace,
            seconds=round(time.perf_counter() - started, 3),
        )
        log.info(
            "cccd read",
            extra={
                "seconds": result.seconds,
                "bytes": sum(len(f) for f in files.values()),
                "passive_auth": verdict.passed,
            },
        )
        return result
