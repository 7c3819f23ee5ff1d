"""The NXP PN532 over HSU (its UART, 115200 8N1): 13.56 MHz cards, ISO 14443 A and B.

Every command is a frame (:mod:`edge.cards.frames`); the PN532 answers with an ACK at once and
with its response when the work is done. This driver:

- wakes the chip from its power-on LowVbat state with a ``55 55 00…`` preamble, then sends the
  SAMConfiguration that the user manual makes mandatory after it (§7.2.10, "normal mode");
- bounds the chip's card search with RFConfiguration MaxRetries, because the default (0xFF)
  blocks until a card comes, which would freeze the polling loop;
- flushes stale input before each command, resends a command the chip NACKed or never ACKed,
  answers a response with a broken checksum with a NACK (the chip then repeats it), and after a
  response timeout sends an ACK, which aborts the chip's running command so the next one starts
  clean;
- chains InDataExchange both ways with the MI bit (AN10609 §3.3.7.4): data longer than the chip's
  262-byte buffer goes out in parts with MI set in the Tg byte, and a response with MI set in its
  status is followed by empty InDataExchanges until the chip has nothing more;
- on close sends an ACK and PowerDown, so the chip stops driving its RF field.

As a :class:`~edge.cards.reader.CardReader` it polls InListPassiveTarget and reports a card once
per tap. ``list_passive_target`` and ``in_data_exchange`` are public for APDU work (the CCCD).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from edge.cards.frames import (
    ACK,
    EXTENDED_MAX_DATA,
    HOST_TO_PN532,
    NACK,
    PN532_TO_HOST,
    Ack,
    ErrorFrame,
    Frame,
    FrameDecoder,
    Information,
    Nack,
    encode,
)
from edge.cards.reader import (
    CardKind,
    CardReader,
    ReaderOptions,
    ReaderProtocolError,
    ReaderTimeout,
    Sighting,
    uid_hex,
)

log = logging.getLogger(__name__)

WAKE_UP = b"\x55\x55" + bytes(14)
"""Wakes the HSU from LowVbat; the zeros give the oscillator time to start before the frame."""

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
POWER_DOWN = 0x16
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_LIST_PASSIVE_TARGET = 0x4A

MAX_RETRIES_ITEM = 0x05
MORE_INFORMATION = 0x40
"""The MI bit: in the Tg byte, more data follows from the host; in the status, from the card."""
EXCHANGE_MAX_DATA = EXTENDED_MAX_DATA - 2
"""Card data per InDataExchange frame: the chip's buffer less the command code and Tg/status."""
EXCHANGE_MAX_RESPONSE = 65_536 + 2
"""More than any ISO 7816 response (extended length); a longer chain is a broken chip or card."""

CardType = Literal["A", "B"]
_BRTY: dict[CardType, bytes] = {"A": b"\x00", "B": b"\x03\x00"}  # B: 106 kbps, AFI 0 (any)
_KIND: dict[CardType, CardKind] = {"A": "iso14443a", "B": "iso14443b"}


class CardError(Exception):
    """An exchange with the card failed; ``code`` is the PN532's status error (UM0701-02 §7.1)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (PN532 status {code:#04x})")
        self.code = code


class CardTimeout(CardError):
    """The card did not answer (moved away, or does not speak this command)."""


class CardGone(CardError):
    """The card that was selected has left the field or been released."""


class CardTransmissionError(CardError):
    """The radio exchange was corrupted (CRC, parity, framing, collision, protocol)."""


class CardAuthenticationError(CardError):
    """MIFARE authentication failed."""


class CardRefused(CardError):
    """The PN532 would not do the exchange in its current state or with these parameters."""


_STATUS_ERRORS: dict[int, tuple[type[CardError], str]] = {
    0x01: (CardTimeout, "the card did not answer in time"),
    0x02: (CardTransmissionError, "CRC error from the card"),
    0x03: (CardTransmissionError, "parity error from the card"),
    0x04: (CardTransmissionError, "wrong bit count during anticollision or select"),
    0x05: (CardTransmissionError, "framing error during a MIFARE operation"),
    0x06: (CardTransmissionError, "abnormal bit collision"),
    0x07: (CardRefused, "the communication buffer is too small"),
    0x09: (CardTransmissionError, "RF buffer overflow"),
    0x0A: (CardTransmissionError, "the RF field was not switched on in time"),
    0x0B: (CardTransmissionError, "RF protocol error"),
    0x0D: (CardRefused, "the PN532 is overheating"),
    0x0E: (CardRefused, "internal buffer overflow"),
    0x10: (CardRefused, "invalid parameter"),
    0x12: (CardRefused, "DEP command not supported by the target"),
    0x13: (CardTransmissionError, "the card's data format does not match the specification"),
    0x14: (CardAuthenticationError, "MIFARE authentication error"),
    0x23: (CardTransmissionError, "wrong UID check byte"),
    0x25: (CardRefused, "invalid device state for DEP"),
    0x26: (CardRefused, "operation not allowed in this configuration"),
    0x27: (CardRefused, "command not acceptable in the current context"),
    0x29: (CardGone, "the target was released"),
    0x2A: (CardGone, "another card is in the field (ID mismatch)"),
    0x2B: (CardGone, "the card has left the field"),
    0x2C: (CardRefused, "NFCID3 mismatch"),
    0x2D: (CardRefused, "over-current"),
    0x2E: (CardRefused, "NAD missing in a DEP frame"),
}


def card_error(status: int) -> CardError:
    """The exception for a non-zero status error code."""
    code = status & 0x3F
    kind, message = _STATUS_ERRORS.get(code, (CardError, "unknown error"))
    return kind(code, message)


@dataclass(frozen=True, slots=True)
class Firmware:
    """GetFirmwareVersion: IC (0x32 for a PN532), version, revision, supported card families."""

    ic: int
    version: int
    revision: int
    support: int

    def __str__(self) -> str:
        families = [
            name
            for bit, name in ((1, "ISO14443A"), (2, "ISO14443B"), (4, "ISO18092"))
            if self.support & bit
        ]
        return f"PN5{self.ic:02X} v{self.version}.{self.revision} ({', '.join(families)})"


@dataclass(frozen=True, slots=True)
class Target:
    """A card the PN532 activated: logical number ``tg`` for InDataExchange, and its identity.

    Type A carries ``atqa`` (SENS_RES), ``sak`` (SEL_RES) and, for ISO 14443-4 cards, ``ats``;
    type B carries ``atqb`` and ``attrib_res``, and its ``uid`` is the PUPI.
    """

    tg: int
    kind: CardType
    uid: bytes
    atqa: bytes | None = None
    sak: int | None = None
    ats: bytes | None = None
    atqb: bytes | None = None
    attrib_res: bytes | None = None

    @property
    def speaks_apdus(self) -> bool:
        """True for ISO 14443-4 cards (type B always; type A when the SAK says so)."""
        return self.kind == "B" or bool((self.sak or 0) & 0x20)


class PN532Options(ReaderOptions):
    """Timing and polling of a PN532; the defaults suit a real chip behind a USB adapter."""

    card_types: tuple[CardType, ...] = Field(default=("A",), min_length=1, max_length=2)
    poll_interval_s: float = Field(default=0.15, ge=0.0, le=10.0)
    passive_retries: int = Field(
        default=2, ge=0, le=254, description="MxRtyPassiveActivation; 255 (forever) would block."
    )
    ack_timeout_s: float = Field(default=0.1, gt=0.0, le=10.0)
    response_timeout_s: float = Field(default=1.0, gt=0.0, le=60.0)
    open_timeout_s: float = Field(
        default=1.5, gt=0.0, le=60.0, description="USB adapters can hold the first byte ~1 s."
    )
    retries: int = Field(
        default=2, ge=0, le=10, description="Resends of an unacknowledged command or NACKs."
    )


class PN532(CardReader):
    """A PN532 on a serial port (HSU)."""

    kind = "pn532"
    options_model = PN532Options
    default_baudrate = 115200
    options: PN532Options

    def __init__(
        self, port: str, *, baudrate: int | None = None, options: PN532Options | None = None
    ) -> None:
        super().__init__(port, baudrate=baudrate, options=options)
        self.firmware: Firmware | None = None
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()
        self._look_started = 0.0

    # --- lifecycle ---------------------------------------------------------------------------
    def _start(self) -> None:
        timeout = self.options.open_timeout_s
        try:
            self.command(SAM_CONFIGURATION, b"\x01\x14\x01", timeout=timeout, wake=True)
        except ReaderTimeout:
            raise ReaderTimeout(
                f"no PN532 answered on {self.port} at {self.baudrate} baud within {timeout:g} s "
                "(check the wiring, the HSU mode switches and the baud rate)"
            ) from None
        self.firmware = self.get_firmware_version()
        retries = self.options.passive_retries
        # MxRtyATR, MxRtyPSL as the chip's defaults; only the passive activation is bounded.
        self.command(RF_CONFIGURATION, bytes([MAX_RETRIES_ITEM, 0xFF, 0x01, retries]))
        log.info("PN532 ready", extra={"port": self.port, "firmware": str(self.firmware)})

    def _stop(self) -> None:
        self._write(ACK)
        self.command(POWER_DOWN, b"\x10", timeout=self.options.ack_timeout_s)  # wake on HSU

    def info(self) -> dict[str, str]:
        info = super().info()
        if self.firmware is not None:
            info["firmware"] = str(self.firmware)
        return info

    # --- commands ----------------------------------------------------------------------------
    def command(
        self, code: int, params: bytes = b"", *, timeout: float | None = None, wake: bool = False
    ) -> bytes:
        """Run one command; return the response's data after its response code.

        Raises :class:`ReaderTimeout` when the chip does not acknowledge or answer in time, and
        :class:`ReaderProtocolError` when it rejects the frame or keeps answering garbled.
        """
        request = encode(Information(HOST_TO_PN532, bytes([code]) + params))
        if wake:
            request = WAKE_UP + request
        # Waking, the first byte can lag by up to a second behind a USB adapter.
        ack_timeout = self.options.open_timeout_s if wake else self.options.ack_timeout_s
        self._send_until_acknowledged(code, request, ack_timeout)
        return self._response(code, timeout or self.options.response_timeout_s)

    def get_firmware_version(self) -> Firmware:
        """The chip's IC, firmware version, revision and supported card families."""
        data = self.command(GET_FIRMWARE_VERSION)
        if len(data) != 4:
            raise ReaderProtocolError(f"GetFirmwareVersion answered {len(data)} bytes, not 4")
        return Firmware(*data)

    def list_passive_target(self, kind: CardType = "A") -> Target | None:
        """Activate one card of ``kind`` in the field (106 kbps), or None if there is none."""
        if kind not in _BRTY:
            raise ValueError(f"card type must be 'A' or 'B', got {kind!r}")
        data = self.command(IN_LIST_PASSIVE_TARGET, b"\x01" + _BRTY[kind])
        if not data or data[0] == 0:
            return None
        try:
            return _parse_target(kind, data[1:])
        except (IndexError, ValueError) as exc:
            raise ReaderProtocolError(
                f"malformed InListPassiveTarget answer {data.hex()}: {exc}"
            ) from None

    def in_data_exchange(self, data: bytes, target: int = 1) -> bytes:
        """Send ``data`` (an APDU) to an activated card and return its whole answer.

        Long data and long answers are chained with the MI bit. A status error raises the
        matching :class:`CardError`; a chip that does not answer, :class:`ReaderTimeout`.
        """
        if not data:
            raise ValueError("nothing to send: InDataExchange needs at least one byte")
        if target not in (1, 2):
            raise ValueError(f"the PN532 numbers its targets 1 and 2, got {target}")
        parts = [data[i : i + EXCHANGE_MAX_DATA] for i in range(0, len(data), EXCHANGE_MAX_DATA)]
        for index, part in enumerate(parts):
            more = MORE_INFORMATION if index < len(parts) - 1 else 0
            status, answer = self._exchange(target | more, part)
        answer = bytearray(answer)
        while status & MORE_INFORMATION:
            if len(answer) > EXCHANGE_MAX_RESPONSE:
                raise ReaderProtocolError(f"the card's answer exceeds {EXCHANGE_MAX_RESPONSE} B")
            status, more_answer = self._exchange(target, b"")
            answer += more_answer
        return bytes(answer)

    def _exchange(self, tg: int, data: bytes) -> tuple[int, bytes]:
        answer = self.command(IN_DATA_EXCHANGE, bytes([tg]) + data)
        if not answer:
            raise ReaderProtocolError("InDataExchange answered without a status byte")
        if answer[0] & 0x3F:
            raise card_error(answer[0])
        return answer[0], answer[1:]

    # --- the frame conversation --------------------------------------------------------------
    def _send_until_acknowledged(self, code: int, request: bytes, ack_timeout: float) -> None:
        """Send ``request`` until the chip ACKs it; a NACK or silence gets it sent again."""
        for attempt in range(self.options.retries + 1):
            self._port().reset_input_buffer()
            self._decoder.reset()
            self._frames.clear()
            self._write(request)
            deadline = time.monotonic() + ack_timeout
            try:
                while not isinstance(frame := self._next_frame(deadline), Ack | Nack):
                    if isinstance(frame, ErrorFrame):
                        raise ReaderProtocolError(
                            f"the PN532 rejected command {code:#04x} as malformed"
                        )
                    self._count_bad("a broken or stale frame instead of an ACK")
            except ReaderTimeout:
                log.debug("no ACK", extra={"command": code, "attempt": attempt})
                continue
            if isinstance(frame, Ack):
                return
            self._count_bad("NACK")
        raise ReaderTimeout(
            f"the PN532 did not acknowledge command {code:#04x} "
            f"after {self.options.retries + 1} tries"
        )

    def _response(self, code: int, timeout: float) -> bytes:
        """The data of the response to ``code``: a broken one is NACKed (the chip repeats it),
        a stale one skipped, and at ``timeout`` the command is aborted with an ACK."""
        deadline = time.monotonic() + timeout
        nacks = 0
        while True:
            try:
                frame = self._next_frame(deadline)
            except ReaderTimeout:
                self._write(ACK)  # abort the chip's command so the next one starts clean
                raise ReaderTimeout(
                    f"the PN532 did not answer command {code:#04x} within {timeout:g} s"
                ) from None
            if isinstance(frame, Information):
                if frame.tfi == PN532_TO_HOST and frame.data[0] == code + 1:
                    return frame.data[1:]
                self._count_bad(f"stale answer {frame.data[:1].hex()} to command {code:#04x}")
            elif isinstance(frame, ErrorFrame):
                raise ReaderProtocolError(f"the PN532 answered command {code:#04x} with an error")
            elif isinstance(frame, Ack | Nack):
                self._count_bad(f"a stray {type(frame).__name__} instead of the answer")
            else:
                self._count_bad("broken answer")
                if nacks == self.options.retries:
                    raise ReaderProtocolError(
                        f"the PN532's answer to {code:#04x} arrived broken {nacks + 1} times"
                    )
                nacks += 1
                self._write(NACK)  # the chip sends its last response again

    def _next_frame(self, deadline: float) -> Frame | None:
        """The next frame, or None once a broken one was dropped; ReaderTimeout at ``deadline``."""
        bad = self._decoder.bad_frames
        while not self._frames:
            if self._decoder.bad_frames > bad:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReaderTimeout("no frame from the PN532 in time")
            self._frames.extend(self._decoder.feed(self._read_some(remaining)))
        return self._frames.popleft()

    def _count_bad(self, what: str) -> None:
        self.stats.bad_frames += 1
        log.debug("PN532 frame problem", extra={"port": self.port, "problem": what})

    # --- polling -----------------------------------------------------------------------------
    def _sight(self) -> Sighting | None:
        self._look_started = time.monotonic()
        for card_type in self.options.card_types:
            target = self.list_passive_target(card_type)
            if target is not None:
                return Sighting(uid_hex(target.uid), _KIND[card_type])
        return None

    def _pause(self, deadline: float) -> None:
        wake = min(deadline, self._look_started + self.options.poll_interval_s)
        time.sleep(max(0.0, wake - time.monotonic()))


def _parse_target(kind: CardType, data: bytes) -> Target:
    """One target's data from InListPassiveTarget (after NbTg); ValueError if inconsistent."""
    tg = data[0]
    if kind == "A":
        atqa, sak, uid_length = data[1:3], data[3], data[4]
        uid = data[5 : 5 + uid_length]
        if uid_length not in (4, 7, 10) or len(uid) != uid_length:
            raise ValueError(f"NFCID1 of {uid_length} bytes")
        rest = data[5 + uid_length :]
        ats = None
        if sak & 0x20 and rest:
            ats = rest[: rest[0]]
            if len(ats) != rest[0]:
                raise ValueError("truncated ATS")
        return Target(tg, kind, bytes(uid), atqa=bytes(atqa), sak=sak, ats=ats)
    atqb = data[1:13]
    if len(atqb) != 12 or atqb[0] != 0x50:
        raise ValueError("ATQB must be 12 bytes starting with 50")
    attrib_length = data[13]
    attrib = data[14 : 14 + attrib_length]
    if len(attrib) != attrib_length:
        raise ValueError("truncated ATTRIB_RES")
    return Target(tg, kind, bytes(atqb[1:5]), atqb=bytes(atqb), attrib_res=bytes(attrib))
