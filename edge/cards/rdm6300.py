"""The RDM6300, a 125 kHz EM4100 reader module on a 9600 8N1 UART.

It speaks without being asked: while a card is in its field it repeats a 14-byte frame,
``STX(02)``, ten ASCII hex digits (a version byte and the 4-byte tag number), two ASCII hex digits
of the XOR of those five bytes, ``ETX(03)``. The repeats are debounced into one tap by the
:class:`~edge.cards.reader.CardReader` base. The UID reported is all five bytes, so two cards whose
tag numbers differ only in the version byte stay apart.

Noise on the line (a long unshielded cable next to a door motor is common at a school gate) is
skipped: the decoder resynchronises on the next STX, and a frame with a bad checksum, a missing
ETX or a non-hex digit is dropped and counted.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import xor

from edge.cards.reader import Sighting, StreamOptions, StreamReader

STX, ETX = 0x02, 0x03
FRAME_SIZE = 14
_HEX_DIGITS = re.compile(rb"[0-9A-Fa-f]{12}")


class Rdm6300Decoder:
    """Frames from an RDM6300 byte stream; never raises on any input."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[str]:
        """Add received bytes; return the UIDs (10 upper-case hex digits) of complete frames."""
        self._buffer += data
        uids: list[str] = []
        while (start := self._buffer.find(STX)) >= 0:
            del self._buffer[:start]
            if len(self._buffer) < FRAME_SIZE:
                break
            uid = _frame_uid(bytes(self._buffer[:FRAME_SIZE]))
            if uid is None:
                self.bad_frames += 1
                del self._buffer[:1]  # rescan after this STX: a good frame may start inside
            else:
                uids.append(uid)
                del self._buffer[:FRAME_SIZE]
        else:
            self._buffer.clear()  # no STX at all: nothing here can become a frame
        return uids


def _frame_uid(frame: bytes) -> str | None:
    """The UID of one 14-byte frame that starts with STX, or None if it is not a valid frame."""
    digits = frame[1:-1]
    if frame[-1] != ETX or not _HEX_DIGITS.fullmatch(digits):
        return None
    data, check = bytes.fromhex(digits[:10].decode()), int(digits[10:], 16)
    return data.hex().upper() if reduce(xor, data) == check else None


def encode_frame(uid: bytes) -> bytes:
    """The frame an RDM6300 sends for a 5-byte EM4100 ``uid`` (used by the emulator)."""
    if len(uid) != 5:
        raise ValueError(f"an EM4100 UID has 5 bytes, got {len(uid)}")
    text = uid.hex().upper() + f"{reduce(xor, uid):02X}"
    return bytes([STX]) + text.encode("ascii") + bytes([ETX])


class RDM6300(StreamReader):
    """An RDM6300 module on a serial port."""

    kind = "rdm6300"
    options_model = StreamOptions
    default_baudrate = 9600

    def __init__(
        self, port: str, *, baudrate: int | None = None, options: StreamOptions | None = None
    ) -> None:
        super().__init__(port, baudrate=baudrate, options=options)
        self._decoder = Rdm6300Decoder()

    def _decode(self, data: bytes) -> list[Sighting]:
        before = self._decoder.bad_frames
        uids = self._decoder.feed(data)
        self.stats.bad_frames += self._decoder.bad_frames - before
        return [Sighting(uid, "em4100") for uid in uids]
