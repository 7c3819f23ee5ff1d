"""A made-up CCCD's chip contents, generated at run time: EF.COM, DG1 (TD1 MRZ), DG2 (a drawn
portrait, JPEG or JPEG 2000), DG3 (locked), DG13 (Vietnamese personal data with diacritics),
EF.CardAccess (a PACEInfo), and EF.SOD signed by a document signer that a test CSCA issued.

Everything is made with ``cryptography`` and OpenCV when asked for: no real person's data, no
third-party photo, no key material on disk. The CMS SignedData is assembled with the small DER
encoder below because ``cryptography``'s PKCS#7 builder cannot set the content type an SOD needs
(id-icao-ldsSecurityObject). Like the chip in :mod:`firmware_tools.emulators.emrtd`, nothing
here comes from the reader's package, so the reader's parser is checked against an independent
encoder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

SignatureScheme = Literal["ecdsa", "rsa", "rsa-pss"]
ImageFormat = Literal["jpeg", "jpeg2000"]

EF_CARD_ACCESS, EF_SOD, EF_COM = 0x011C, 0x011D, 0x011E
DG_FILE = {1: 0x0101, 2: 0x0102, 3: 0x0103, 13: 0x010D}
DG_TAG = {1: 0x61, 2: 0x75, 3: 0x63, 13: 0x6D}

# --- a minimal DER encoder ---


def der(tag: int, content: bytes) -> bytes:
    """One DER TLV (tags up to two bytes)."""
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
    if n >= 0x80:
        length += n.to_bytes(length[0] & 0x7F, "big")
    tag_bytes = tag.to_bytes(2, "big") if tag > 0xFF else bytes([tag])
    return tag_bytes + length + content


def seq(*parts: bytes) -> bytes:
    return der(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    """DER SET OF: members in ascending order of their encodings."""
    return der(0x31, b"".join(sorted(parts)))


def integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = b""
    for arc in [40 * first + second, *rest]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return der(0x06, body)


def octets(value: bytes) -> bytes:
    return der(0x04, value)


def utf8(text: str) -> bytes:
    return der(0x0C, text.encode("utf-8"))


NULL = b"\x05\x00"
SHA256 = "2.16.840.1.101.3.4.2.1"


def algorithm(dotted: str, parameters: bytes | None = NULL) -> bytes:
    return seq(oid(dotted), parameters or b"")


# --- the person and the certificates ---


@dataclass(frozen=True)
class Citizen:
    """A fictitious CCCD holder (a secondary-school student)."""

    id_number: str = "079208001234"
    full_name: str = "Nguyễn Thị Minh Châu"
    date_of_birth: dt.date = dt.date(2008, 9, 15)
    sex: Literal["Nam", "Nữ"] = "Nữ"
    nationality: str = "Việt Nam"
    ethnicity: str = "Kinh"
    religion: str = "Không"
    home_town: str = "Xã Tân Phước, Huyện Gò Công Đông, Tiền Giang"
    residence: str = "12 Đường Lê Lợi, Phường Bến Thành, Quận 1, Thành phố Hồ Chí Minh"
    identifying_marks: str = "Nốt ruồi C:1,5cm trên sau đuôi mắt phải"
    issue_date: dt.date = dt.date(2022, 10, 3)
    expiry_date: dt.date = dt.date(2033, 9, 15)
    father_name: str = "Nguyễn Văn Hùng"
    mother_name: str = "Trần Thị Thu Hà"

    @property
    def mrz_document_number(self) -> str:
        """A CCCD's MRZ document number: the last 9 digits of the ID number."""
        return self.id_number[3:]


FORGED = {"full_name": "Lê Văn Giả", "residence": "1 Đường Giả Mạo, Hà Nội"}
"""What a forger writes into a data group after it was signed."""


@dataclass(frozen=True)
class SigningPki:
    """A country signing CA and the document signer it issued (keys included)."""

    csca: x509.Certificate
    ds: x509.Certificate
    ds_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def csca_pem(self) -> bytes:
        return self.csca.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "campusgate test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_pki(
    *, key: Literal["ec", "rsa"] = "ec", name: str = "Test CSCA Viet Nam", valid_days: int = 3650
) -> SigningPki:
    """A self-signed CSCA and a DS certificate it issued, valid from yesterday.

    EC (P-256) keys by default because they are generated in microseconds; RSA 2048 when a test
    needs the RSA signature paths.
    """

    def new_key() -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        if key == "ec":
            return ec.generate_private_key(ec.SECP256R1())
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    csca_key, ds_key = new_key(), new_key()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=valid_days)
    csca = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(csca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(csca_key.public_key()), critical=False
        )
        .sign(csca_key, hashes.SHA256())
    )
    ds = (
        x509.CertificateBuilder()
        .subject_name(_name(f"Document Signer of {name}"))
        .issuer_name(csca.subject)
        .public_key(ds_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(csca_key, hashes.SHA256())
    )
    return SigningPki(csca=csca, ds=ds, ds_key=ds_key)


# --- data groups ---


def _ascii_upper(text: str) -> str:
    """MRZ transliteration of Vietnamese: drop diacritics, Đ → D, upper case."""
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if not unicodedata.combining(c)).upper()


def check_digit(text: str) -> str:
    """ICAO 9303 check digit: values 0-9, A-Z = 10-35, < = 0, weighted 7 3 1, mod 10."""
    values = [int(c) if c.isdigit() else 0 if c == "<" else ord(c) - 55 for c in text]
    return str(sum(v * (7, 3, 1)[i % 3] for i, v in enumerate(values)) % 10)


def td1_mrz(person: Citizen) -> str:
    """The card's 90-character MRZ: IDVNM, 9-digit document number, the full ID as optional
    data; YYMMDD dates; surname << given names."""
    number = person.mrz_document_number
    line1 = f"IDVNM{number}{check_digit(number)}{person.id_number}".ljust(30, "<")
    born = person.date_of_birth.strftime("%y%m%d")
    expires = person.expiry_date.strftime("%y%m%d")
    sex = "F" if person.sex == "Nữ" else "M"
    line2 = f"{born}{check_digit(born)}{sex}{expires}{check_digit(expires)}VNM".ljust(29, "<")
    line2 += check_digit(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    surname, _, given = _ascii_upper(person.full_name).partition(" ")
    line3 = f"{surname}<<{given.replace(' ', '<')}".ljust(30, "<")[:30]
    return line1 + line2 + line3


def dg1(person: Citizen) -> bytes:
    return der(0x61, der(0x5F1F, td1_mrz(person).encode("ascii")))


def portrait(width: int = 240, height: int = 320, *, mirrored: bool = False) -> np.ndarray:
    """A drawn, face-like passport portrait (RGB): hair, face, eyes, brows, nose, mouth."""
    image = np.full((height, width, 3), (226, 232, 240), np.uint8)
    cx, cy = width // 2, int(height * 0.45)
    face_w, face_h = int(width * 0.30), int(height * 0.30)
    shoulders = (int(width * 0.45), int(height * 0.2))
    cv2.ellipse(image, (cx, height), shoulders, 0, 180, 360, (40, 60, 110), -1)
    hair = (face_w + 12, face_h + 4)
    cv2.ellipse(image, (cx, cy - face_h // 4), hair, 0, 0, 360, (30, 25, 20), -1)
    cv2.ellipse(image, (cx, cy), (face_w, face_h), 0, 0, 360, (224, 182, 150), -1)
    for side in (-1, 1):
        eye = (cx + side * face_w // 2, cy - face_h // 6)
        cv2.ellipse(image, eye, (face_w // 6, face_h // 14), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(image, eye, face_h // 16, (50, 35, 25), -1)
        brow = (eye[0], eye[1] - face_h // 6)
        cv2.ellipse(image, brow, (face_w // 5, face_h // 16), 0, 200, 340, (40, 30, 25), 3)
    cv2.line(image, (cx, cy - face_h // 10), (cx - 5, cy + face_h // 4), (180, 130, 110), 2)
    mouth = (face_w // 3, face_h // 8)
    cv2.ellipse(image, (cx, cy + face_h // 2), mouth, 0, 10, 170, (170, 60, 70), 3)
    # Fine texture, as a photograph has, so the JPEG is of a realistic size.
    noise = np.random.default_rng(7).integers(-6, 7, image.shape, dtype=np.int16)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return image[:, ::-1].copy() if mirrored else image


def encode_image(image: np.ndarray, image_format: ImageFormat) -> bytes:
    """JPEG (quality 90) or JPEG 2000 (rate 0.05) bytes of an RGB image: near the size of a
    real CCCD portrait, and well under the 32 KB an even-INS READ BINARY can reach."""
    extension = ".jpg" if image_format == "jpeg" else ".jp2"
    if image_format == "jpeg":
        options = [cv2.IMWRITE_JPEG_QUALITY, 90]
    else:
        options = [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, 50]
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), options)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {image_format}")
    return encoded.tobytes()


def dg2(image: np.ndarray, image_format: ImageFormat, sex: str) -> bytes:
    """DG2: a CBEFF biometric information group template holding one ISO 19794-5 (2005) facial
    record with one full-frontal image."""
    picture = encode_image(image, image_format)
    height, width = image.shape[:2]
    info = (
        (20 + 12 + len(picture)).to_bytes(4, "big")  # facial record data length
        + (0).to_bytes(2, "big")  # feature points
        + bytes([2 if sex == "Nữ" else 1, 0, 0])  # gender, eye colour, hair colour
        + bytes(3 + 2 + 3 + 3)  # property mask, expression, pose angles, uncertainties
    )
    image_info = (
        bytes([1, 0 if image_format == "jpeg" else 1])  # full frontal; JPEG / JPEG 2000
        + width.to_bytes(2, "big")
        + height.to_bytes(2, "big")
        + bytes([1, 2])  # 24-bit RGB; digital still camera
        + bytes(4)  # device type, quality
    )
    record = info + image_info + picture
    facial = b"FAC\x00010\x00" + (14 + len(record)).to_bytes(4, "big") + (1).to_bytes(2, "big")
    # Biometric header template: ICAO header version 1.1, type face, format owner and type of
    # ISO/IEC JTC 1 SC 37 face image data.
    header = der(
        0xA1,
        der(0x80, b"\x01\x01")
        + der(0x81, b"\x02")
        + der(0x87, b"\x01\x01")
        + der(0x88, b"\x00\x08"),
    )
    template = der(0x7F60, header + der(0x5F2E, facial + record))
    return der(0x75, der(0x7F61, integer(1) + template))


def _dmy(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def dg13(person: Citizen) -> bytes:
    """DG13 as CCCDs lay it out: 6D { SEQUENCE { 1, OID, SET { SEQUENCE { n, value } … } } }."""
    texts = [
        person.id_number,
        person.full_name,
        _dmy(person.date_of_birth),
        person.sex,
        person.nationality,
        person.ethnicity,
        person.religion,
        person.home_town,
        person.residence,
        person.identifying_marks,
        _dmy(person.issue_date),
        _dmy(person.expiry_date),
    ]
    fields = [seq(integer(n), utf8(text)) for n, text in enumerate(texts, start=1)]
    fields.append(seq(integer(13), seq(utf8(person.father_name), utf8(person.mother_name))))
    return der(0x6D, seq(integer(1), oid("1.0.10646.1.0.8"), set_of(*fields)))


def ef_com(data_groups: list[int]) -> bytes:
    tags = bytes(DG_TAG[n] for n in data_groups)
    return der(0x60, der(0x5F01, b"0107") + der(0x5F36, b"040000") + der(0x5C, tags))


def card_access() -> bytes:
    """One PACEInfo: ECDH generic mapping, AES-128, version 2, BrainpoolP256r1 (id 13)."""
    return set_of(seq(oid("0.4.0.127.0.7.2.2.4.2.2"), integer(2), integer(13)))


# --- EF.SOD ---


def _sign(pki: SigningPki, message: bytes, scheme: SignatureScheme) -> tuple[bytes, bytes]:
    """(signature, signatureAlgorithm identifier) for ``message`` with the DS key."""
    key = pki.ds_key
    if scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256())), algorithm("1.2.840.10045.4.3.2", None)
    if scheme == "ecdsa" or not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"signature scheme {scheme} does not fit the test PKI's key")
    if scheme == "rsa":
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return signature, algorithm("1.2.840.113549.1.1.11")
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
    parameters = seq(
        der(0xA0, algorithm(SHA256)),
        der(0xA1, algorithm("1.2.840.113549.1.1.8", algorithm(SHA256))),
        der(0xA2, integer(32)),
    )
    return key.sign(message, pss, hashes.SHA256()), algorithm("1.2.840.113549.1.1.10", parameters)


def sod(hashes_by_dg: dict[int, bytes], pki: SigningPki, scheme: SignatureScheme) -> bytes:
    """EF.SOD: tag 77 around a CMS SignedData of an LDSSecurityObject (SHA-256 hashes)."""
    lds_security_object = seq(
        integer(0),
        algorithm(SHA256),
        seq(*(seq(integer(n), octets(h)) for n, h in sorted(hashes_by_dg.items()))),
    )
    lds_oid = "2.23.136.1.1.1"
    attributes = [
        seq(oid("1.2.840.113549.1.9.3"), set_of(oid(lds_oid))),
        seq(
            oid("1.2.840.113549.1.9.4"),
            set_of(octets(hashlib.sha256(lds_security_object).digest())),
        ),
    ]
    signature, signature_algorithm = _sign(pki, set_of(*attributes), scheme)
    signer_info = seq(
        integer(1),
        seq(pki.ds.issuer.public_bytes(), integer(pki.ds.serial_number)),
        algorithm(SHA256),
        der(0xA0, b"".join(sorted(attributes))),
        signature_algorithm,
        octets(signature),
    )
    signed_data = seq(
        integer(3),
        set_of(algorithm(SHA256)),
        seq(oid(lds_oid), der(0xA0, octets(lds_security_object))),
        der(0xA0, pki.ds.public_bytes(serialization.Encoding.DER)),
        set_of(signer_info),
    )
    return der(0x77, seq(oid("1.2.840.113549.1.7.2"), der(0xA0, signed_data)))


# --- the document ---


@dataclass(frozen=True)
class EmrtdDocument:
    """What the emulated chip holds: files by identifier, and the MRZ fields its BAC keys come
    from. ``face`` is the portrait DG2 encodes (RGB), for tests to compare with."""

    person: Citizen
    pki: SigningPki
    master_files: dict[int, bytes]
    files: dict[int, bytes]
    locked_files: frozenset[int]
    face: np.ndarray = field(repr=False)

    @property
    def mrz_document_number(self) -> str:
        return self.person.mrz_document_number

    @property
    def mrz_date_of_birth(self) -> str:
        return self.person.date_of_birth.strftime("%y%m%d")

    @property
    def mrz_date_of_expiry(self) -> str:
        return self.person.expiry_date.strftime("%y%m%d")

    @property
    def mrz_information(self) -> str:
        """What BAC keys are derived from: each of the three fields followed by its check digit."""
        fields = (
            self.mrz_document_number.ljust(9, "<"),
            self.mrz_date_of_birth,
            self.mrz_date_of_expiry,
        )
        return "".join(value + check_digit(value) for value in fields)


def build_document(
    person: Citizen | None = None,
    *,
    pki: SigningPki | None = None,
    scheme: SignatureScheme = "ecdsa",
    image_format: ImageFormat = "jpeg",
    portrait_size: tuple[int, int] = (240, 320),
    forged: int | None = None,
    with_card_access: bool = True,
    face: np.ndarray | None = None,
) -> EmrtdDocument:
    """Build a signed test document.

    ``forged``: number of a data group (1, 2 or 13) replaced after signing — a different name
    and address, or a mirrored portrait — so its hash no longer matches the SOD, as if a forger
    had rewritten the chip. ``pki`` defaults to a fresh test CSCA + DS. ``face``: the portrait
    DG2 holds (RGB), for tests that need a real face; default a drawn one of ``portrait_size``.
    """
    person = person or Citizen()
    pki = pki or make_pki(key="ec" if scheme == "ecdsa" else "rsa")
    face = portrait(*portrait_size) if face is None else face
    signed_groups = {
        1: dg1(person),
        2: dg2(face, image_format, person.sex),
        3: der(0x63, b""),  # fingerprints: present, listed, locked (EAC)
        13: dg13(person),
    }
    hashes_by_dg = {n: hashlib.sha256(content).digest() for n, content in signed_groups.items()}
    stored = dict(signed_groups)
    if forged is not None:
        fake = dataclasses.replace(person, **FORGED)
        rebuild = {
            1: lambda: dg1(fake),
            2: lambda: dg2(portrait(*portrait_size, mirrored=True), image_format, person.sex),
            13: lambda: dg13(fake),
        }
        if forged not in rebuild:
            raise ValueError(f"forged must be 1, 2 or 13, not {forged}")
        stored[forged] = rebuild[forged]()
    files = {DG_FILE[n]: content for n, content in stored.items()}
    files[EF_COM] = ef_com(sorted(signed_groups))
    files[EF_SOD] = sod(hashes_by_dg, pki, scheme)
    return EmrtdDocument(
        person=person,
        pki=pki,
        master_files={EF_CARD_ACCESS: card_access()} if with_card_access else {},
        files=files,
        locked_files=frozenset({DG_FILE[3]}),
        face=face,
    )
