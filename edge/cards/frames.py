"""The PN532's host frames (UM0701-02 §6.2): encode them, and decode them from a noisy byte stream.

A frame on the wire is ``00 00 FF LEN LCS TFI DATA… DCS 00`` (normal, LEN ≤ 255) or
``00 00 FF FF FF LENm LENl LCS TFI DATA… DCS 00`` (extended, up to 264 bytes after the TFI);
``LEN + LCS`` and ``TFI + ΣDATA + DCS`` are 0 modulo 256. Three short frames carry no data: the ACK
``00 00 FF 00 FF 00``, the NACK ``00 00 FF FF 00 00`` and the application error frame
``00 00 FF 01 FF 7F 81 00``.

The decoder is incremental because a UART hands bytes over in arbitrary pieces, and it never
raises: a serial line delivers wake-up bytes, noise after a power glitch, and frames cut in half by
a reset, and none of that may stop a gate. It resynchronises on the ``00 FF`` start code (the
``00`` preamble is optional in the manual), drops a frame whose LCS or DCS is wrong and counts it,
so the driver can ask for a retransmission (NACK). After a bad checksum it rescans from just
past the bad start code rather than trusting the bad frame's length, so a frame that follows a
damaged one is still found.
"""

from __future__ import annotations

from dataclasses import dataclass

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5
ERROR_TFI = 0x7F

NORMAL_MAX_DATA = 254
"""Bytes after the TFI in a normal frame (LEN counts the TFI and is one byte)."""
EXTENDED_MAX_DATA = 264
"""Bytes after the TFI in an extended frame: the PN532's buffer, not the 16-bit LEN, limits it."""

ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
ERROR = bytes.fromhex("0000FF01FF7F8100")

_START = b"\x00\xff"


class FrameError(ValueError):
    """A frame that cannot be encoded (wrong TFI, too much data)."""


@dataclass(frozen=True, slots=True)
class Ack:
    """The receiver took the last frame; for the PN532, a command is accepted and running."""


@dataclass(frozen=True, slots=True)
class Nack:
    """The receiver asks for the last frame again."""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """The PN532's application-level error: it could not parse the command (syntax error)."""


@dataclass(frozen=True, slots=True)
class Information:
    """A command (TFI ``D4``) or a response (TFI ``D5``); ``data`` starts with the command code."""

    tfi: int
    data: bytes

    def __post_init__(self) -> None:
        if self.tfi not in (HOST_TO_PN532, PN532_TO_HOST):
            raise FrameError(f"TFI must be D4 or D5, got {self.tfi:#04x}")
        if not 1 <= len(self.data) <= EXTENDED_MAX_DATA:
            raise FrameError(f"a frame carries 1-{EXTENDED_MAX_DATA} bytes, got {len(self.data)}")


Frame = Ack | Nack | ErrorFrame | Information


def checksum(data: bytes) -> int:
    """The byte that makes ``data`` plus itself sum to 0 modulo 256 (LCS and DCS alike)."""
    return -sum(data) & 0xFF


def encode(frame: Frame) -> bytes:
    """The bytes of ``frame`` on the wire; extended framing only when the data needs it."""
    if isinstance(frame, Ack):
        return ACK
    if isinstance(frame, Nack):
        return NACK
    if isinstance(frame, ErrorFrame):
        return ERROR
    body = bytes([frame.tfi]) + frame.data
    if len(frame.data) <= NORMAL_MAX_DATA:
        head = bytes([len(body), checksum(bytes([len(body)]))])
    else:
        length = len(body).to_bytes(2, "big")
        head = b"\xff\xff" + length + bytes([checksum(length)])
    return b"\x00" + _START + head + body + bytes([checksum(body), 0x00])


class _BadFrame(Exception):
    """Internal: the bytes at a start code are not a valid frame."""


class FrameDecoder:
    """Turns received bytes into frames; never raises on any input.

    ``bad_frames`` counts frames dropped for a wrong LCS, DCS or impossible length;
    ``skipped_bytes`` counts bytes that belonged to no frame (wake-up preambles and postambles
    included, so it is a diagnostic, not an error count).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.bad_frames = 0
        self.skipped_bytes = 0

    def reset(self) -> None:
        """Forget a partial frame: the driver does this before each command and after a timeout."""
        self.skipped_bytes += len(self._buffer)
        self._buffer.clear()

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames now complete, in order."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            start = self._buffer.find(_START)
            if start < 0:
                # Keep a trailing 00: it may be the first half of the next start code.
                keep = 1 if self._buffer.endswith(b"\x00") else 0
                self._skip(len(self._buffer) - keep)
                return frames
            self._skip(start)
            try:
                parsed = self._parse_one()
            except _BadFrame:
                self.bad_frames += 1
                self._skip(len(_START))
                continue
            if parsed is None:
                return frames  # incomplete: wait for more bytes
            frame, size = parsed
            if len(self._buffer) > size and self._buffer[size] == 0x00:
                size += 1  # the postamble; a missing one is harmless
            del self._buffer[:size]
            frames.append(frame)

    def _skip(self, count: int) -> None:
        self.skipped_bytes += count
        del self._buffer[:count]

    def _parse_one(self) -> tuple[Frame, int] | None:
        """The frame at the buffer's start and its size, or None while it is incomplete.

        Raises ``_BadFrame`` for a wrong checksum or an impossible length or TFI.
        """
        buf = self._buffer
        if len(buf) < 4:
            return None
        first, second = buf[2], buf[3]
        if (first, second) == (0x00, 0xFF):
            return Ack(), 4
        if (first, second) == (0xFF, 0x00):
            return Nack(), 4
        if (first, second) == (0xFF, 0xFF):
            if len(buf) < 7:
                return None
            length, lcs, head = int.from_bytes(buf[4:6], "big"), buf[6], 7
            if (buf[4] + buf[5] + lcs) & 0xFF or not 1 <= length <= EXTENDED_MAX_DATA + 1:
                raise _BadFrame
        else:
            length, lcs, head = first, second, 4
            if (length + lcs) & 0xFF or length == 0:
                raise _BadFrame
        end = head + length
        if len(buf) < end + 1:
            return None
        body = bytes(buf[head:end])
        if (sum(body) + buf[end]) & 0xFF:
            raise _BadFrame
        tfi, data = body[0], body[1:]
        if tfi == ERROR_TFI and not data:
            return ErrorFrame(), end + 1
        if tfi not in (HOST_TO_PN532, PN532_TO_HOST) or not data:
            raise _BadFrame
        return Information(tfi, data), end + 1
