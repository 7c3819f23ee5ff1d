"""Readers that write each card's number as a line of text (USB "keyboard wedge" style, serial).

Cheap desk readers of either frequency show up as a serial port and print the card as text, one
line per tap, but the text differs by model: ``04A2B3C4``, ``0012345678`` (the decimal number
printed on EM cards), ``UID: 04 A2 B3 C4``, or the bytes in reverse order. The format is therefore
configuration: a regular expression whose named group ``uid`` holds the number, its base (hex or
decimal), and whether the bytes come reversed. Whatever the format, the UID is reported as the
contract wants it: upper-case hex, 4-10 bytes. A line that does not match, or a number that is
not 4-10 bytes long, is dropped and counted, never guessed at.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from edge.cards.reader import Sighting, StreamOptions, StreamReader, uid_hex

MAX_LINE = 256
"""A longer run of bytes without an end of line is noise, not a card number."""

_DEFAULT_PATTERNS = {"hex": r"(?P<uid>[0-9A-Fa-f]{8,20})", "dec": r"(?P<uid>[0-9]{8,25})"}
_DIGITS = {"hex": re.compile(r"[0-9A-Fa-f]+"), "dec": re.compile(r"[0-9]+")}


class LineOptions(StreamOptions):
    """How a line reader writes card numbers."""

    pattern: str | None = Field(
        default=None,
        description="Regex searched in each line; its group 'uid' holds the number "
        "(spaces and colons inside it are ignored). Default: a run of hex or decimal digits.",
    )
    number_base: Literal["hex", "dec"] = "hex"
    reverse_bytes: bool = Field(default=False, description="The reader prints the LSB first.")
    min_bytes: int = Field(
        default=4, ge=4, le=10, description="Decimal numbers are padded to this many bytes."
    )

    @field_validator("pattern")
    @classmethod
    def _has_uid_group(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
            if "uid" not in compiled.groupindex:
                raise ValueError("needs a named group (?P<uid>...)")
        return pattern

    @property
    def uid_pattern(self) -> re.Pattern[str]:
        """The configured pattern, or the default one for the number base."""
        return re.compile(self.pattern or _DEFAULT_PATTERNS[self.number_base])


def parse_line(line: str, options: LineOptions) -> str | None:
    """The UID in ``line`` as upper-case hex, or None if the line holds no valid card number."""
    match = options.uid_pattern.search(line)
    if match is None:
        return None
    digits = re.sub(r"[\s:]", "", match.group("uid"))
    if not _DIGITS[options.number_base].fullmatch(digits):
        return None  # int() would take signs, underscores and non-ASCII digits
    if options.number_base == "dec":
        number = int(digits, 10)
        size = max(options.min_bytes, (number.bit_length() + 7) // 8)
        raw = number.to_bytes(size, "big")
    else:
        raw = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    try:
        return uid_hex(raw[::-1] if options.reverse_bytes else raw)
    except ValueError:  # not 4-10 bytes
        return None


class LineReader(StreamReader):
    """A reader that prints one line per card on a serial port."""

    kind = "line"
    options_model = LineOptions
    default_baudrate = 9600
    options: LineOptions

    def __init__(
        self, port: str, *, baudrate: int | None = None, options: LineOptions | None = None
    ) -> None:
        super().__init__(port, baudrate=baudrate, options=options)
        self._buffer = bytearray()

    def _decode(self, data: bytes) -> list[Sighting]:
        self._buffer += data
        *lines, rest = re.split(rb"[\r\n]", self._buffer)
        self._buffer = bytearray(rest)
        if len(self._buffer) > MAX_LINE:
            self.stats.bad_frames += 1
            self._buffer.clear()
        sightings = []
        for raw in filter(None, lines):
            uid = parse_line(raw.decode("ascii", errors="replace"), self.options)
            if uid is None:
                self.stats.bad_frames += 1
            else:
                sightings.append(Sighting(uid, "unknown"))
        return sightings
