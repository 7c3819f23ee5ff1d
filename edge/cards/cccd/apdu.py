"""ISO 7816-4 command and response APDUs, the handful of commands an eMRTD reader sends, and
reading a whole transparent file in chunks.

The reader talks to the card through a :class:`Channel`: :class:`PlainChannel` sends APDUs as
they are (before BAC), :class:`~edge.cards.cccd.secure_messaging.SecureChannel` wraps them in
secure messaging (after). Status words become exceptions here, once, so nothing above has to
compare ``0x6A82`` by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge.cards.cccd.errors import (
    CardError,
    FileNotFound,
    LdsError,
    SecureMessagingRejected,
    SecurityStatusNotSatisfied,
)
from edge.cards.cccd.tlv import encoded_length

Transceive = Callable[[bytes], bytes]
"""Sends one command APDU to the card and returns its response APDU (data + SW1 SW2)."""

SW_OK = 0x9000
SW_END_OF_FILE = 0x6282
MAX_OFFSET = 0x7FFF  # READ BINARY with even INS: P1 bit 8 must stay clear
HEADER_PEEK = 4  # tag + 0x82 length: enough to size any file READ BINARY can reach

STATUS_MEANINGS = {
    0x6282: "end of file reached before Le bytes",
    0x6300: "authentication failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6882: "secure messaging not supported",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "secure messaging data objects incorrect",
    0x6A80: "incorrect parameters in the data field",
    0x6A82: "file or application not found",
    0x6A86: "incorrect parameters P1-P2",
    0x6B00: "wrong parameters P1-P2 (offset outside the file)",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}

_ERROR_CLASSES: dict[int, type[CardError]] = {
    0x6A82: FileNotFound,
    0x6982: SecurityStatusNotSatisfied,
    0x6987: SecureMessagingRejected,
    0x6988: SecureMessagingRejected,
}


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A short command APDU; ``le`` is the expected response length (1-256) or None."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} must be one byte, got {getattr(self, name)}")
        if len(self.data) > 255:
            raise ValueError(f"short APDUs carry at most 255 data bytes, not {len(self.data)}")
        if self.le is not None and not 1 <= self.le <= 256:
            raise ValueError(f"Le must be 1-256, got {self.le}")

    @property
    def header(self) -> bytes:
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def to_bytes(self) -> bytes:
        """Encoded as case 1-4 short APDU (Le 256 is sent as 00)."""
        body = bytes([len(self.data)]) + self.data if self.data else b""
        trailer = bytes([self.le & 0xFF]) if self.le is not None else b""
        return self.header + body + trailer


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """Response data and the status word SW1SW2 as one integer."""

    data: bytes
    sw: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise CardError(f"the card's response has {len(raw)} bytes, not even a status word", 0)
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


def describe(sw: int) -> str:
    """``6A82 (file or application not found)``."""
    return f"{sw:04X} ({STATUS_MEANINGS.get(sw, 'unknown status')})"


def status_error(sw: int, what: str) -> CardError:
    """The exception for status word ``sw`` answering ``what``."""
    cls = _ERROR_CLASSES.get(sw, CardError)
    return cls(f"{what}: the card answered {describe(sw)}", sw)


def expect_ok(response: ResponseApdu, what: str) -> bytes:
    """The response data when the status is 9000, else the matching :class:`CardError`."""
    if response.sw != SW_OK:
        raise status_error(response.sw, what)
    return response.data


class Channel(Protocol):
    """Anything that carries a command APDU to the card and brings its response back."""

    def transmit(self, command: CommandApdu) -> ResponseApdu: ...


class PlainChannel:
    """APDUs sent unprotected over a :data:`Transceive` function (before access control)."""

    def __init__(self, transceive: Transceive) -> None:
        self._transceive = transceive

    def transmit(self, command: CommandApdu) -> ResponseApdu:
        return ResponseApdu.from_bytes(self._transceive(command.to_bytes()))


def select_application(aid: bytes) -> CommandApdu:
    """SELECT by DF name, no response data (P2 0C)."""
    return CommandApdu(0x00, 0xA4, 0x04, 0x0C, aid)


def select_file(fid: int) -> CommandApdu:
    """SELECT an elementary file by its 2-byte identifier under the current DF."""
    return CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))


def read_binary(offset: int, length: int) -> CommandApdu:
    """READ BINARY of ``length`` bytes at ``offset`` (0-32767) of the selected file."""
    if not 0 <= offset <= MAX_OFFSET:
        raise ValueError(f"READ BINARY offset must be 0-{MAX_OFFSET}, got {offset}")
    return CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length)


def get_challenge() -> CommandApdu:
    """GET CHALLENGE for the chip's 8-byte nonce RND.IC."""
    return CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)


def mutual_authenticate(cryptogram: bytes) -> CommandApdu:
    """EXTERNAL/MUTUAL AUTHENTICATE carrying E.IFD ‖ M.IFD; the answer has the same length."""
    return CommandApdu(0x00, 0x82, 0x00, 0x00, cryptogram, le=len(cryptogram))


Progress = Callable[[int, int], None]
"""Called with (bytes read so far, file size) while a file is read."""


def _read_chunk(channel: Channel, offset: int, length: int, name: str) -> bytes:
    response = channel.transmit(read_binary(offset, length))
    if response.sw not in (SW_OK, SW_END_OF_FILE):
        raise status_error(response.sw, f"reading {name} at offset {offset}")
    if not response.data:
        raise CardError(f"reading {name} at offset {offset}: the card sent no data", response.sw)
    return response.data


def read_file(
    channel: Channel, fid: int, name: str, *, chunk: int, progress: Progress | None = None
) -> bytes:
    """Select file ``fid`` and read it whole: its first bytes give its TLV size, the rest comes
    in READ BINARY chunks of at most ``chunk`` bytes at increasing offsets."""
    expect_ok(channel.transmit(select_file(fid)), f"selecting {name}")
    data = _read_chunk(channel, 0, HEADER_PEEK, name)
    try:
        total = encoded_length(data)
    except LdsError as exc:
        raise LdsError(f"{name}: {exc}") from None
    if total > MAX_OFFSET + 1:
        raise LdsError(
            f"{name} is {total} bytes; files over {MAX_OFFSET + 1} bytes need READ BINARY "
            "with odd INS, which this reader does not support"
        )
    data = data[:total]
    while len(data) < total:
        if progress:
            progress(len(data), total)
        data += _read_chunk(channel, len(data), min(chunk, total - len(data)), name)
    if progress:
        progress(total, total)
    return data[:total]
