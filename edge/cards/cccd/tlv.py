"""BER-TLV as the chip speaks it: LDS files, secure-messaging objects and the SOD's DER.

Everything the chip sends is untrusted until passive authentication has run, and some of it is
parsed before (the SOD itself, EF.CardAccess), so every length is checked against the bytes
actually present and every failure is an :class:`LdsError` saying where it happened. Only the
definite-length forms are accepted: ICAO 9303 files are DER, and indefinite lengths would let a
malformed file make the parser scan to its end.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.cards.cccd.errors import LdsError

_MAX_TAG_BYTES = 3
_MAX_LENGTH_BYTES = 3  # 16 MB: more than any file a chip holds


@dataclass(frozen=True, slots=True)
class Tlv:
    """One decoded TLV: its tag as an integer (``0x5F1F``), value, and complete encoding."""

    tag: int
    value: bytes
    raw: bytes

    @property
    def constructed(self) -> bool:
        """True when the value is itself a series of TLVs (bit 6 of the first tag byte)."""
        return bool(self.raw[0] & 0x20)

    def children(self) -> list[Tlv]:
        """The TLVs inside a constructed value."""
        if not self.constructed:
            raise LdsError(f"tag {self.tag:X} is primitive and has no inner TLVs")
        try:
            return parse_all(self.value)
        except LdsError as exc:
            raise LdsError(f"inside tag {self.tag:X}: {exc}") from None

    def child(self, tag: int) -> Tlv:
        """The first inner TLV with ``tag``; missing is an error naming both tags."""
        for tlv in self.children():
            if tlv.tag == tag:
                return tlv
        raise LdsError(f"tag {self.tag:X} has no {tag:X} inside")


def _read_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """Tag, value length and value offset of the TLV at ``offset``."""
    end = len(data)
    if offset >= end:
        raise LdsError(f"expected a tag at byte {offset}, found the end of the data")
    start = offset
    tag = data[offset]
    offset += 1
    if tag & 0x1F == 0x1F:
        while True:
            if offset >= end:
                raise LdsError(f"tag at byte {start} is cut off")
            if offset - start >= _MAX_TAG_BYTES:
                raise LdsError(f"tag at byte {start} is longer than {_MAX_TAG_BYTES} bytes")
            tag = (tag << 8) | data[offset]
            offset += 1
            if not data[offset - 1] & 0x80:
                break
    if offset >= end:
        raise LdsError(f"tag {tag:X} at byte {start} has no length")
    first = data[offset]
    offset += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise LdsError(f"tag {tag:X} at byte {start} uses an indefinite length (not DER)")
    else:
        count = first & 0x7F
        if count > _MAX_LENGTH_BYTES:
            raise LdsError(f"tag {tag:X} at byte {start} has a {count}-byte length field")
        if offset + count > end:
            raise LdsError(f"length of tag {tag:X} at byte {start} is cut off")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    return tag, length, offset


def encoded_length(head: bytes) -> int:
    """Total size (header + value) of the TLV whose first bytes are ``head``.

    Used to learn a file's size from its first few bytes before reading the rest.
    """
    _, length, value_offset = _read_header(head, 0)
    return value_offset + length


def read_tlv(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """The TLV at ``offset`` and the offset just after it."""
    tag, length, value_offset = _read_header(data, offset)
    end = value_offset + length
    if end > len(data):
        raise LdsError(
            f"tag {tag:X} at byte {offset} claims {length} bytes, "
            f"only {len(data) - value_offset} follow"
        )
    return Tlv(tag, bytes(data[value_offset:end]), bytes(data[offset:end])), end


def parse_all(data: bytes) -> list[Tlv]:
    """Every TLV in ``data``, which must hold nothing else."""
    items = []
    offset = 0
    while offset < len(data):
        tlv, offset = read_tlv(data, offset)
        items.append(tlv)
    return items


def parse_one(data: bytes, tag: int | None = None) -> Tlv:
    """The single TLV that makes up ``data`` (optionally checking its tag)."""
    tlv, end = read_tlv(data, 0)
    if end != len(data):
        raise LdsError(f"{len(data) - end} unexpected bytes after tag {tlv.tag:X}")
    if tag is not None and tlv.tag != tag:
        raise LdsError(f"expected tag {tag:X}, found {tlv.tag:X}")
    return tlv


def encode_length(length: int) -> bytes:
    """DER length octets."""
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode(tag: int, value: bytes) -> bytes:
    """One TLV with a tag of one or more bytes."""
    return tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big") + encode_length(len(value)) + value


def decode_oid(tlv: Tlv) -> str:
    """Dotted form of an OBJECT IDENTIFIER TLV."""
    if tlv.tag != 0x06:
        raise LdsError(f"expected an OBJECT IDENTIFIER (06), found tag {tlv.tag:X}")
    value = tlv.value
    if not value or value[-1] & 0x80:
        raise LdsError("OBJECT IDENTIFIER is empty or cut off")
    arcs: list[int] = []
    current = 0
    for byte in value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


def decode_int(tlv: Tlv) -> int:
    """Value of an INTEGER TLV (two's complement, as DER encodes it)."""
    if tlv.tag != 0x02:
        raise LdsError(f"expected an INTEGER (02), found tag {tlv.tag:X}")
    if not tlv.value:
        raise LdsError("INTEGER has no value bytes")
    return int.from_bytes(tlv.value, "big", signed=True)
