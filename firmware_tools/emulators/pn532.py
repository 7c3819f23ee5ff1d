"""A PN532 on HSU, emulated on a pty: the commands a reader needs, cards to place, faults to inject.

It behaves as the chip does on the wire (UM0701-02): asleep after power-on until a ``55``
wake-up byte; an ACK for every well-formed command, then the response; the application error
frame for a command it cannot parse; the last response again on a host NACK; a pending response
dropped on a host ACK (abort); and with RFConfiguration MaxRetries left at 0xFF, no answer at all
to InListPassiveTarget while the field is empty, as the real chip blocks.

Long APDU answers are chained the way the chip does it, with the MI bit: the chip's buffer
holds 262 bytes of card data per InDataExchange (264 after the command code and status, which is
why those frames need extended framing above 254), so a longer answer is returned in parts, each
with MI set in the status byte, and the host fetches the next part with an empty InDataExchange
(AN10609 §3.3.7.4, "metachaining"). Extended frames alone could not carry more than 264 bytes,
and answers such as a DG2 face image read with extended-length APDUs are far longer. Host data
longer than 262 bytes arrives the same way, MI set in the Tg byte of every part but the last.

ISO 14443-4 cards delegate APDUs to any object with ``process_apdu(apdu: bytes) -> bytes``
(the CCCD's eMRTD emulator plugs in there). The frame codec is shared with the driver on
purpose: it is the wire format both sides must agree on, and its own tests check it against the
manual's literal frames, so a codec bug cannot hide behind the agreement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

from edge.cards.frames import (
    ACK,
    ERROR,
    EXTENDED_MAX_DATA,
    HOST_TO_PN532,
    NACK,
    PN532_TO_HOST,
    Ack,
    FrameDecoder,
    Information,
    Nack,
    encode,
)
from firmware_tools.emulators.pty_pair import PtyEmulator

log = logging.getLogger(__name__)

CHIP_DATA = EXTENDED_MAX_DATA - 2
"""Card data per InDataExchange the chip's buffer holds."""

_NO_ANSWER = b"no answer"  # sentinel: ACK the command, then stay silent (a blocked search)


class ApduCard(Protocol):
    """The contactless application behind an ISO 14443-4 card."""

    def process_apdu(self, apdu: bytes) -> bytes: ...


@dataclass
class EmulatedCard:
    """A card in the emulated field.

    Type A defaults to a MIFARE Classic 1K (SAK 08); with an ``apdu`` handler, to an
    ISO 14443-4 card (SAK 20) with an ATS. Type B cards speak APDUs and their UID is the PUPI.
    """

    uid: bytes
    kind: Literal["A", "B"] = "A"
    apdu: ApduCard | None = None
    atqa: bytes = b"\x00\x04"
    sak: int | None = None
    ats: bytes = bytes.fromhex("0578807002")  # TL, T0 (FSCI 8: 256-byte frames), TA, TB, TC

    def __post_init__(self) -> None:
        sizes = (4, 7, 10) if self.kind == "A" else (4,)
        if len(self.uid) not in sizes:
            raise ValueError(f"a type {self.kind} UID has {sizes} bytes, got {len(self.uid)}")
        if self.sak is None:
            self.sak = 0x20 if self.apdu is not None else 0x08

    def target_data(self) -> bytes:
        """This card as InListPassiveTarget reports it, Tg 1."""
        if self.kind == "A":
            sak = self.sak or 0
            ats = self.ats if sak & 0x20 else b""
            return b"\x01" + self.atqa + bytes([sak, len(self.uid)]) + self.uid + ats
        atqb = b"\x50" + self.uid + bytes(4) + bytes.fromhex("008171")  # 256-byte frames, -4
        return b"\x01" + atqb + b"\x01\x00"  # ATTRIB_RES: one byte, MBLI 0 / CID 0


@dataclass
class Fault:
    """What goes wrong with the emulator's handling of the next command (one per command)."""

    noise: bytes = b""
    """Garbage written before the ACK."""
    silent: bool = False
    """The command is lost: no ACK, no response."""
    nack: bool = False
    """A NACK instead of the ACK, and the command is not run (the host should resend)."""
    error_frame: bool = False
    """The application error frame instead of the response."""
    corrupt: Literal["lcs", "dcs"] | None = None
    """The response goes out with this checksum wrong; a host NACK gets a good copy."""
    corrupt_repeats: bool = False
    """NACKs get the damaged copy too (a line that keeps garbling)."""
    half: bool = False
    """Only the first half of the response goes out."""
    delay: float = 0.0
    """Extra seconds before the response (a slow card, a slow USB adapter)."""
    status: int = 0
    """InDataExchange answers with this status error instead of asking the card."""


@dataclass
class EmulatorRecord:
    """What the emulator saw, for tests to check the driver's conduct."""

    commands: list[int] = field(default_factory=list)
    host_acks: int = 0
    host_nacks: int = 0
    ignored_while_asleep: int = 0


class PN532Emulator(PtyEmulator):
    """A PN532 (IC 0x32, firmware 1.6, types A, B and ISO 18092 by default) on a pty."""

    baudrate = 115200

    def __init__(
        self,
        *,
        firmware: bytes = bytes([0x32, 0x01, 0x06, 0x07]),
        reply_delay: float = 0.0,
        baudrate: int | None = None,
    ) -> None:
        super().__init__(baudrate=baudrate)
        self.firmware = firmware
        self.reply_delay = reply_delay
        self.seen = EmulatorRecord()
        self._lock = threading.Lock()
        self._cards: list[EmulatedCard] = []
        self._faults: deque[Fault] = deque()
        self._awake = False
        self._passive_retries = 0xFF
        self._active: EmulatedCard | None = None
        self._incoming = bytearray()  # host data chained with MI, not yet given to the card
        self._outgoing = b""  # the card's answer not yet fetched by the host
        self._last_response = b""
        self._pending: tuple[float, bytes] | None = None  # (when, bytes) of a delayed response

    # --- what a test does --------------------------------------------------------------------
    def place(self, card: EmulatedCard) -> None:
        """Put ``card`` in the field."""
        with self._lock:
            self._cards.append(card)

    def remove(self, uid: bytes | None = None) -> None:
        """Take the card ``uid`` (or every card) out of the field."""
        with self._lock:
            self._cards = [c for c in self._cards if uid is not None and c.uid != uid]

    def inject(self, *faults: Fault) -> None:
        """Apply ``faults`` to the next commands, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def send_noise(self, data: bytes) -> None:
        """Write raw bytes now, between commands."""
        self._line().write(data)

    def _present(self, uid: str) -> None:
        self.place(EmulatedCard(bytes.fromhex(uid)))

    def _withdraw(self, uid: str) -> None:
        self.remove(bytes.fromhex(uid))

    # --- the chip ----------------------------------------------------------------------------
    def _serve(self, stop: threading.Event) -> None:
        line, decoder = self._line(), FrameDecoder()
        while not stop.is_set():
            wait = 0.05
            if self._pending is not None:
                wait = max(0.0, min(wait, self._pending[0] - time.monotonic()))
            data = line.read(wait)
            if self._pending is not None and time.monotonic() >= self._pending[0]:
                line.write(self._pending[1])
                self._pending = None
            if not data:
                continue
            if not self._awake:
                if 0x55 not in data:
                    self.seen.ignored_while_asleep += 1
                    continue
                self._awake = True
                decoder.reset()
            for frame in decoder.feed(data):
                if isinstance(frame, Ack):
                    self.seen.host_acks += 1
                    self._pending = None  # the host aborts the running command
                elif isinstance(frame, Nack):
                    self.seen.host_nacks += 1
                    line.write(self._last_response)
                elif isinstance(frame, Information) and frame.tfi == HOST_TO_PN532:
                    self._command(frame.data[0], frame.data[1:])

    def _command(self, code: int, params: bytes) -> None:
        line = self._line()
        with self._lock:
            fault = self._faults.popleft() if self._faults else Fault()
        self.seen.commands.append(code)
        if fault.silent:
            return
        line.write(fault.noise)
        if fault.nack:
            line.write(NACK)
            return
        line.write(ACK)
        if fault.error_frame:
            response = ERROR
        else:
            answer = self._execute(code, params, fault)
            if answer is _NO_ANSWER:
                return
            response = (
                ERROR
                if answer is None
                else encode(Information(PN532_TO_HOST, bytes([code + 1]) + answer))
            )
        damaged = _damaged(response, fault)
        self._last_response = damaged if fault.corrupt_repeats else response
        self._pending = (time.monotonic() + self.reply_delay + fault.delay, damaged)

    def _execute(self, code: int, params: bytes, fault: Fault) -> bytes | None:
        """The response data after the response code; None for a syntax error (error frame)."""
        if code == 0x02:  # GetFirmwareVersion
            return self.firmware
        if code == 0x14:  # SAMConfiguration: mode 1-4
            return b"" if params and 1 <= params[0] <= 4 else None
        if code == 0x16:  # PowerDown: asleep until the next wake-up byte
            self._awake = False
            return b"\x00"
        if code == 0x32:  # RFConfiguration
            if params[:1] == b"\x05":
                if len(params) != 4:
                    return None
                self._passive_retries = params[3]
            return b"" if params else None
        if code == 0x4A:
            return self._list_passive_target(params)
        if code == 0x40:
            return self._data_exchange(params, fault)
        return None

    def _list_passive_target(self, params: bytes) -> bytes | None:
        if len(params) < 2 or params[0] not in (1, 2):
            return None
        kind = {0x00: "A", 0x03: "B"}.get(params[1])
        if kind == "B" and len(params) < 3:
            return None  # type B needs the AFI
        with self._lock:
            found = next((c for c in self._cards if c.kind == kind), None)
        self._active = found
        self._incoming.clear()
        self._outgoing = b""
        if found is None:
            return _NO_ANSWER if self._passive_retries == 0xFF else b"\x00"
        return b"\x01" + found.target_data()

    def _data_exchange(self, params: bytes, fault: Fault) -> bytes | None:
        if not params:
            return None
        tg, more, data = params[0] & 0x3F, params[0] & 0x40, params[1:]
        if fault.status:
            return bytes([fault.status])
        card = self._active
        if card is None or tg != 1:
            return b"\x27"  # not acceptable in the current context: nothing activated
        with self._lock:
            present = card in self._cards
        if not present or card.apdu is None:
            return b"\x01"  # the card does not answer
        if more:
            self._incoming += data
            return b"\x00"
        if not data and not self._incoming:
            if not self._outgoing:
                return b"\x27"
            return self._next_part()
        apdu = bytes(self._incoming + data)
        self._incoming.clear()
        try:
            self._outgoing = card.apdu.process_apdu(apdu)
        except Exception:
            log.exception("emulated card failed", extra={"apdu": apdu.hex()})
            return b"\x01"
        return self._next_part()

    def _next_part(self) -> bytes:
        part, self._outgoing = self._outgoing[:CHIP_DATA], self._outgoing[CHIP_DATA:]
        return bytes([0x40 if self._outgoing else 0x00]) + part


def _damaged(frame: bytes, fault: Fault) -> bytes:
    """``frame`` as ``fault`` lets it out: a checksum broken, or cut in half."""
    damaged = bytearray(frame)
    if fault.corrupt == "lcs":
        damaged[7 if frame[3:5] == b"\xff\xff" else 4] ^= 0xFF
    elif fault.corrupt == "dcs":
        damaged[-2] ^= 0xFF
    if fault.half:
        damaged = damaged[: len(damaged) // 2]
    return bytes(damaged)
