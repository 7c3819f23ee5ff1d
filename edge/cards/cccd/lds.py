"""The logical data structure of an eMRTD (ICAO 9303-10) as a CCCD fills it: EF.COM, DG1 (MRZ),
DG2 (face image) and DG13 (Vietnam's personal-data group).

DG13 is not defined by ICAO. Its layout here follows what readers of real cards report: tag 6D
around SEQUENCE { INTEGER version, OID, SET { SEQUENCE { INTEGER n, value } … } }, where n numbers
the field (1 ID number … 12 expiry date, 13 the parents' names as a nested SEQUENCE, 14 spouse,
15 other document number); values are UTF-8 Vietnamese with diacritics. Fields are found by their
number, never by position, because a card leaves out what does not apply (no spouse, no other
document). Numbers this module does not know are kept in ``extra`` rather than dropped.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.cards.cccd.errors import LdsError, MrzError
from edge.cards.cccd.mrz import Td1Mrz, parse_td1
from edge.cards.cccd.tlv import Tlv, decode_int, parse_one
from models.images import ImageError, decode_image

EMRTD_AID = bytes.fromhex("A0000002471001")
EF_CARD_ACCESS = 0x011C
EF_SOD = 0x011D
EF_COM = 0x011E


def dg_file_id(number: int) -> int:
    """File identifier of data group ``number`` (DG1 = 0101 … DG16 = 0110)."""
    return 0x0100 + number


DG_TAGS = {
    0x61: 1, 0x75: 2, 0x63: 3, 0x76: 4, 0x65: 5, 0x66: 6, 0x67: 7, 0x68: 8,
    0x69: 9, 0x6A: 10, 0x6B: 11, 0x6C: 12, 0x6D: 13, 0x6E: 14, 0x6F: 15, 0x70: 16,
}  # fmt: skip
"""Data-group number for each LDS application tag (EF.COM lists the tags)."""


class EfCom(BaseModel):
    """EF.COM: LDS and Unicode versions and which data groups the chip holds."""

    lds_version: str
    unicode_version: str
    data_groups: list[int]


def _ascii(tlv: Tlv, what: str) -> str:
    try:
        return tlv.value.decode("ascii")
    except UnicodeDecodeError:
        raise LdsError(f"{what} is not ASCII") from None


def parse_ef_com(data: bytes) -> EfCom:
    """EF.COM (tag 60): 5F01 LDS version, 5F36 Unicode version, 5C list of DG tags."""
    com = parse_one(data, 0x60)
    tags = com.child(0x5C).value
    unknown = [tag for tag in tags if tag not in DG_TAGS]
    if unknown:
        raise LdsError(f"EF.COM lists unknown data-group tags {bytes(unknown).hex(' ').upper()}")
    return EfCom(
        lds_version=_ascii(com.child(0x5F01), "EF.COM LDS version"),
        unicode_version=_ascii(com.child(0x5F36), "EF.COM Unicode version"),
        data_groups=sorted(DG_TAGS[tag] for tag in tags),
    )


def parse_dg1(data: bytes) -> Td1Mrz:
    """DG1 (tag 61) → 5F1F: the MRZ as ASCII text, parsed as TD1."""
    text = _ascii(parse_one(data, 0x61).child(0x5F1F), "DG1 MRZ")
    try:
        return parse_td1(text)
    except MrzError as exc:
        raise LdsError(f"DG1: {exc}") from None


# --- DG2: CBEFF biometric template holding an ISO/IEC 19794-5 (2005) facial record ---

_FACE_HEADER = 14  # 'FAC\0', version '010\0', record length (4), number of images (2)
_FACE_INFO = 20  # facial information block
_FEATURE_POINT = 8
_IMAGE_INFO = 12
_IMAGE_TYPES: dict[int, Literal["jpeg", "jpeg2000"]] = {0: "jpeg", 1: "jpeg2000"}
_MAGIC = {
    "jpeg": (b"\xff\xd8\xff",),
    "jpeg2000": (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51"),
}


class FaceImage(BaseModel):
    """The portrait from DG2: encoded bytes as stored (JPEG or JPEG 2000) and their size."""

    model_config = ConfigDict(frozen=True)

    format: Literal["jpeg", "jpeg2000"]
    width: int
    height: int
    data: bytes = Field(repr=False, exclude=True)

    @property
    def suffix(self) -> str:
        """File name suffix for the stored bytes."""
        return ".jpg" if self.format == "jpeg" else ".jp2"

    def to_rgb(self) -> np.ndarray:
        """Decode to an H×W×3 uint8 RGB array (OpenCV reads both JPEG and JPEG 2000)."""
        try:
            return decode_image(self.data)
        except ImageError as exc:
            raise LdsError(f"DG2 face image ({self.format}): {exc}") from None


def _face_record(block: bytes) -> FaceImage:
    if len(block) < _FACE_HEADER + _FACE_INFO + _IMAGE_INFO:
        raise LdsError(f"DG2 facial record is only {len(block)} bytes")
    if block[:4] != b"FAC\x00":
        raise LdsError("DG2 biometric data is not an ISO 19794-5 facial record ('FAC')")
    if block[4:8] != b"010\x00":
        raise LdsError(f"DG2 facial record version {block[4:7]!r} is not supported (only 010)")
    if int.from_bytes(block[12:14], "big") < 1:
        raise LdsError("DG2 facial record holds no image")
    info = block[_FACE_HEADER:]
    block_length = int.from_bytes(info[0:4], "big")
    points = int.from_bytes(info[4:6], "big")
    image_info = _FACE_INFO + points * _FEATURE_POINT
    image_start = image_info + _IMAGE_INFO
    if not image_start < block_length <= len(info):
        raise LdsError(
            f"DG2 facial record claims {block_length} bytes for its first image, "
            f"{len(info)} are present and {image_start} are headers"
        )
    kind = _IMAGE_TYPES.get(info[image_info + 1])
    if kind is None:
        raise LdsError(f"DG2 image data type {info[image_info + 1]} is neither JPEG nor JPEG 2000")
    image = info[image_start:block_length]
    if not image.startswith(_MAGIC[kind]):
        raise LdsError(f"DG2 says {kind} but the image bytes do not start like one")
    return FaceImage(
        format=kind,
        width=int.from_bytes(info[image_info + 2 : image_info + 4], "big"),
        height=int.from_bytes(info[image_info + 4 : image_info + 6], "big"),
        data=image,
    )


def parse_dg2(data: bytes) -> FaceImage:
    """DG2 (tag 75) → 7F61 group → first 7F60 template → 5F2E facial record → first image."""
    group = parse_one(data, 0x75).child(0x7F61)
    if decode_int(group.child(0x02)) < 1:
        raise LdsError("DG2 holds no biometric templates")
    template = group.child(0x7F60)
    blocks = [tlv for tlv in template.children() if tlv.tag in (0x5F2E, 0x7F2E)]
    if not blocks:
        raise LdsError("DG2 template has no biometric data block (5F2E)")
    if blocks[0].tag == 0x7F2E:
        raise LdsError("DG2 biometric data is enciphered (7F2E), which this reader cannot open")
    return _face_record(blocks[0].value)


# --- DG13: Vietnam's personal data ---


class PersonalData(BaseModel):
    """DG13 of a CCCD, as the card stores it (dates stay text, usually dd/mm/yyyy)."""

    id_number: str | None = None
    full_name: str | None = None
    date_of_birth: str | None = None
    sex: str | None = None
    nationality: str | None = None
    ethnicity: str | None = None
    religion: str | None = None
    home_town: str | None = None
    residence: str | None = None
    identifying_marks: str | None = None
    issue_date: str | None = None
    expiry_date: str | None = None
    father_name: str | None = None
    mother_name: str | None = None
    spouse_name: str | None = None
    other_document_number: str | None = None
    extra: dict[int, str] = Field(default_factory=dict)
    """Fields with numbers not listed above (e.g. 16, whose meaning is not confirmed)."""


_DG13_TEXT_FIELDS = {
    1: "id_number",
    2: "full_name",
    3: "date_of_birth",
    4: "sex",
    5: "nationality",
    6: "ethnicity",
    7: "religion",
    8: "home_town",
    9: "residence",
    10: "identifying_marks",
    11: "issue_date",
    12: "expiry_date",
    15: "other_document_number",
}
_DG13_NAME_LISTS = {13: ("father_name", "mother_name"), 14: ("spouse_name",)}
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii"}  # UTF8String, PrintableString


def _text(tlv: Tlv, number: int) -> str | None:
    encoding = _STRING_TAGS.get(tlv.tag)
    if encoding is None:
        raise LdsError(f"DG13 field {number}: expected a string, found tag {tlv.tag:X}")
    try:
        text = unicodedata.normalize("NFC", tlv.value.decode(encoding)).strip()
    except UnicodeDecodeError:
        raise LdsError(f"DG13 field {number} is not valid {encoding}") from None
    return text or None


def parse_dg13(data: bytes) -> PersonalData:
    """DG13 (tag 6D) of a Vietnamese CCCD → :class:`PersonalData`."""
    content = parse_one(data, 0x6D).child(0x30)
    fields: dict[str, str | None] = {}
    extra: dict[int, str] = {}
    for entry in content.child(0x31).children():
        if entry.tag != 0x30:
            raise LdsError(f"DG13 field list holds tag {entry.tag:X}, not a SEQUENCE")
        parts = entry.children()
        if not parts:
            raise LdsError("DG13 has an empty field entry")
        number = decode_int(parts[0])
        values = parts[1:]
        if len(values) > 1:
            raise LdsError(f"DG13 field {number} has {len(values)} values")
        if not values:
            continue
        value = values[0]
        if number in _DG13_NAME_LISTS:
            if value.tag != 0x30:
                raise LdsError(f"DG13 field {number}: expected a SEQUENCE of names")
            for name, tlv in zip(_DG13_NAME_LISTS[number], value.children(), strict=False):
                fields[name] = _text(tlv, number)
        elif number in _DG13_TEXT_FIELDS:
            fields[_DG13_TEXT_FIELDS[number]] = _text(value, number)
        elif (text := _text(value, number)) is not None:
            extra[number] = text
    return PersonalData(**fields, extra=extra)
