"""Vietnamese text for SMS: unaccented GSM-7, segment counting and shortening to a budget.

SMS in Vietnam is billed per segment. One GSM-7 segment carries 160 characters (153 when the
message is split), but a single diacritic forces UCS-2 and 70 (67) characters, so Vietnamese
with its tones costs two or three times as much. Hence the unaccented form ("Nguyen Van An da den
truong") in the GSM 03.38 basic set, shortened at a word boundary to the school's maximum number
of segments; the full form is used only where the gateway takes Unicode and it still fits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The 127 characters of the GSM 03.38 default alphabet (the escape code excluded)."""

GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Characters reached through the escape code: two septets each."""

# Common characters outside the basic set, mapped to their nearest basic-set spelling.
_TO_BASIC = {
    "‘": "'", "’": "'", "‚": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "″": '"', "«": '"', "»": '"',
    "–": "-", "—": "-", "−": "-", "‐": "-", "‑": "-", "•": "-", "~": "-",
    "…": "...", "·": ".", "×": "x",
    "[": "(", "]": ")", "{": "(", "}": ")", "|": "/", "\\": "/", "^": "'", "€": "EUR",
    "\t": " ", "\f": " ", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": "",
}  # fmt: skip

SINGLE = {"gsm7": 160, "ucs2": 70}
PART = {"gsm7": 153, "ucs2": 67}
"""Units per segment: a whole message, and each part of a concatenated one (the rest of the
140 bytes is taken by the concatenation header)."""


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: Encoding
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    segments: int


@dataclass(frozen=True, slots=True)
class SmsText:
    """The text to hand a gateway, whether it needs the Unicode flag, and what it will cost."""

    text: str
    unicode: bool
    segments: int


def unaccent(text: str) -> str:
    """Strip every diacritic, Vietnamese tones and vowel marks alike: "Đặng Thị Ánh" → "Dang Thi
    Anh". đ/Đ have no decomposition, so they are mapped explicitly."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped)


def to_gsm7(text: str) -> str:
    """``text`` unaccented and spelled with the GSM 03.38 basic set only, so it travels at 160
    characters per segment on every handset; anything without a near spelling becomes ``?``."""
    out: list[str] = []
    for ch in unaccent(text):
        if ch in _TO_BASIC:
            out.append(_TO_BASIC[ch])
        elif ch in GSM7_BASIC:
            out.append(ch)
        elif unicodedata.category(ch).startswith(("C", "Z")):
            out.append(" ")
        else:
            out.append("?")
    return "".join(out)


def is_gsm7_basic(text: str) -> bool:
    return all(ch in GSM7_BASIC for ch in text)


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the default alphabet or its extension, else UCS-2."""
    return "gsm7" if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else "ucs2"


def _units(ch: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def count_segments(text: str) -> SegmentCount:
    """How many segments ``text`` costs. An escape pair or a surrogate pair never straddles two
    parts, so a concatenated message is packed character by character, not by division."""
    encoding = encoding_of(text)
    sizes = [_units(ch, encoding) for ch in text]
    total = sum(sizes)
    if total <= SINGLE[encoding]:
        return SegmentCount(encoding, total, 1)
    segments, used = 1, 0
    for size in sizes:
        if used + size > PART[encoding]:
            segments, used = segments + 1, 0
        used += size
    return SegmentCount(encoding, total, segments)


def shorten(text: str, max_segments: int) -> str:
    """``text`` unchanged when it fits ``max_segments``, else cut at the last word boundary that
    leaves room for an ellipsis (a hard cut only when the first word alone is too long)."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if count_segments(text).segments <= max_segments:
        return text
    ellipsis = "..." if encoding_of(text) == "gsm7" else "…"

    def fits(end: int) -> bool:
        return count_segments(text[:end].rstrip(" ,;:-") + ellipsis).segments <= max_segments

    boundaries = [i for i, ch in enumerate(text) if ch.isspace() and i > 0]
    end = _last_fitting(boundaries, fits) or _last_fitting(list(range(1, len(text))), fits)
    return text[: end or 0].rstrip(" ,;:-") + ellipsis


def _last_fitting(ends: list[int], fits: Callable[[int], bool]) -> int | None:
    """The largest ``end`` in ascending ``ends`` with ``fits(end)``; cost grows with length, so
    a binary search finds it."""
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(ends[mid]):
            best, lo = ends[mid], mid + 1
        else:
            hi = mid - 1
    return best


def prepare_sms(full_text: str, short_text: str, *, unicode: bool, max_segments: int) -> SmsText:
    """The form to send: the full text with diacritics when the gateway takes Unicode and it fits
    ``max_segments``; otherwise the short form in GSM-7, shortened to fit."""
    if unicode:
        count = count_segments(full_text)
        if count.segments <= max_segments:
            return SmsText(full_text, count.encoding == "ucs2", count.segments)
    gsm = shorten(to_gsm7(short_text), max_segments)
    return SmsText(gsm, False, count_segments(gsm).segments)
