"""EF.SOD, the document security object (ICAO 9303-10 §4.6.2): a CMS SignedData whose content
is the LDSSecurityObject — one hash per data group — signed by the document signer (DS), whose
certificate travels inside.

:func:`parse_sod` takes the structure apart; :func:`verify_signature` checks the CMS signature
with the DS certificate. Whether the DS certificate itself is trustworthy (issued by a known
CSCA) is :mod:`edge.cards.cccd.passive_auth`'s question.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from edge.cards.cccd.errors import LdsError, SodError
from edge.cards.cccd.tlv import Tlv, decode_int, decode_oid, parse_one

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_RSA_PSS = "1.2.840.113549.1.1.10"
_OID_MGF1 = "1.2.840.113549.1.1.8"

HASHES: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
"""Hash algorithms ICAO 9303 allows, by OID, as :mod:`hashlib` names."""

# Signature algorithm OID -> hash name, or None when the hash comes from digestAlgorithm.
_RSA_PKCS1: dict[str, str | None] = {
    "1.2.840.113549.1.1.1": None,  # rsaEncryption
    "1.2.840.113549.1.1.5": "sha1",
    "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
}
_ECDSA: dict[str, str | None] = {
    "1.2.840.10045.2.1": None,  # id-ecPublicKey
    "1.2.840.10045.4.1": "sha1",
    "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}
_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class Sod:
    """The parts of EF.SOD passive authentication needs."""

    hash_algorithm: str
    dg_hashes: dict[int, bytes]
    content: bytes
    content_type: str
    digest_algorithm: str
    signed_attributes: Tlv | None
    signature_algorithm: list[Tlv]
    signature: bytes
    certificates: list[x509.Certificate]
    signer_id: Tlv


def _fields(tlv: Tlv, minimum: int, what: str) -> list[Tlv]:
    """The inner TLVs of ``tlv``, at least ``minimum`` of them."""
    inner = tlv.children()
    if len(inner) < minimum:
        raise SodError(f"{what} has {len(inner)} fields, expected at least {minimum}")
    return inner


def _hash_name(algorithm: Tlv, what: str) -> str:
    oid = decode_oid(_fields(algorithm, 1, what)[0])
    if oid not in HASHES:
        raise SodError(f"{what} {oid} is not a hash algorithm ICAO 9303 allows")
    return HASHES[oid]


def _lds_security_object(content: bytes) -> tuple[str, dict[int, bytes]]:
    """LDSSecurityObject ::= SEQUENCE { version, hashAlgorithm, SEQUENCE OF DataGroupHash, … }."""
    fields = _fields(parse_one(content, 0x30), 3, "LDSSecurityObject")
    algorithm = _hash_name(fields[1], "LDSSecurityObject hash algorithm")
    dg_hashes: dict[int, bytes] = {}
    for entry in fields[2].children():
        number, value = _fields(entry, 2, "DataGroupHash")[:2]
        dg = decode_int(number)
        if not 1 <= dg <= 16 or value.tag != 0x04:
            raise SodError(f"LDSSecurityObject has a malformed hash entry for DG{dg}")
        dg_hashes[dg] = value.value
    return algorithm, dg_hashes


def _certificates(tlv: Tlv) -> list[x509.Certificate]:
    certificates = []
    for entry in tlv.children():
        try:
            certificates.append(x509.load_der_x509_certificate(entry.raw))
        except ValueError as exc:
            raise SodError(f"a certificate in EF.SOD does not parse: {exc}") from None
    return certificates


def parse_sod(data: bytes) -> Sod:
    """Take EF.SOD (tag 77 around a CMS ContentInfo) apart; malformed input → :class:`SodError`."""
    try:
        return _parse(data)
    except SodError:
        raise
    except LdsError as exc:
        raise SodError(f"EF.SOD is malformed: {exc}") from None


def _parse(data: bytes) -> Sod:
    content_info = _fields(parse_one(parse_one(data, 0x77).value, 0x30), 2, "ContentInfo")
    if decode_oid(content_info[0]) != OID_SIGNED_DATA:
        raise SodError("EF.SOD does not hold a CMS SignedData")
    signed = _fields(parse_one(content_info[1].value, 0x30), 4, "SignedData")
    encapsulated = _fields(signed[2], 2, "EncapsulatedContentInfo")
    content_type = decode_oid(encapsulated[0])
    if content_type != OID_LDS_SECURITY_OBJECT:
        raise SodError(f"SignedData holds {content_type}, not an LDSSecurityObject")
    content = parse_one(encapsulated[1].value, 0x04).value
    certificates = next((_certificates(t) for t in signed[3:] if t.tag == 0xA0), [])
    signer_infos = signed[-1].children()
    if signed[-1].tag != 0x31 or len(signer_infos) != 1:
        raise SodError("SignedData must have exactly one SignerInfo")
    signer = _fields(signer_infos[0], 5, "SignerInfo")
    attributes = signer[3] if signer[3].tag == 0xA0 else None
    at = 4 if attributes is not None else 3
    if len(signer) < at + 2 or signer[at + 1].tag != 0x04:
        raise SodError("SignerInfo has no signature")
    hash_algorithm, dg_hashes = _lds_security_object(content)
    return Sod(
        hash_algorithm=hash_algorithm,
        dg_hashes=dg_hashes,
        content=content,
        content_type=content_type,
        digest_algorithm=_hash_name(signer[2], "SignerInfo digest algorithm"),
        signed_attributes=attributes,
        signature_algorithm=_fields(signer[at], 1, "signature algorithm"),
        signature=signer[at + 1].value,
        certificates=certificates,
        signer_id=signer[1],
    )


def _attribute(attributes: Tlv, oid: str) -> Tlv:
    for attribute in attributes.children():
        parts = _fields(attribute, 2, "signed attribute")
        if decode_oid(parts[0]) == oid:
            values = parts[1].children()
            if len(values) != 1:
                raise SodError(f"signed attribute {oid} must have exactly one value")
            return values[0]
    raise SodError(f"signed attributes lack {oid}")


def _signer_certificate(sod: Sod) -> x509.Certificate:
    """The certificate the SignerInfo names (issuer + serial, or subject key identifier)."""
    for certificate in sod.certificates:
        if sod.signer_id.tag == 0x30:
            issuer, serial = _fields(sod.signer_id, 2, "IssuerAndSerialNumber")[:2]
            if (
                issuer.raw == certificate.issuer.public_bytes()
                and decode_int(serial) == certificate.serial_number
            ):
                return certificate
        elif sod.signer_id.tag == 0x80:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sod.signer_id.value:
                return certificate
    raise SodError("EF.SOD does not contain the document signer certificate its signer names")


def _pss(parameters: list[Tlv]) -> tuple[padding.PSS, str]:
    """RSASSA-PSS-params: [0] hash, [1] mask generation, [2] salt length (RFC 4055 defaults)."""
    hash_name, mgf_hash, salt = "sha1", "sha1", 20
    for field in parameters:
        inner = _fields(field, 1, "RSASSA-PSS parameter")[0]
        if field.tag == 0xA0:
            hash_name = _hash_name(inner, "PSS hash")
        elif field.tag == 0xA1:
            mgf = _fields(inner, 2, "PSS mask generation")
            if decode_oid(mgf[0]) != _OID_MGF1:
                raise SodError("RSASSA-PSS uses a mask generation function other than MGF1")
            mgf_hash = _hash_name(mgf[1], "MGF1 hash")
        elif field.tag == 0xA2:
            salt = decode_int(inner)
    return padding.PSS(padding.MGF1(_HASH_CLASSES[mgf_hash]()), salt), hash_name


def _check(key: object, algorithm: list[Tlv], signature: bytes, data: bytes, digest: str) -> None:
    """Verify ``signature`` over ``data`` with the scheme the algorithm identifier names."""
    oid = decode_oid(algorithm[0])
    if isinstance(key, rsa.RSAPublicKey) and (oid == _OID_RSA_PSS or oid in _RSA_PKCS1):
        if oid == _OID_RSA_PSS:
            scheme, name = _pss(algorithm[1].children() if len(algorithm) > 1 else [])
        else:
            scheme, name = padding.PKCS1v15(), _RSA_PKCS1[oid] or digest
        key.verify(signature, data, scheme, _HASH_CLASSES[name]())
    elif isinstance(key, ec.EllipticCurvePublicKey) and oid in _ECDSA:
        key.verify(signature, data, ec.ECDSA(_HASH_CLASSES[_ECDSA[oid] or digest]()))
    else:
        raise SodError(f"signature algorithm {oid} does not fit the DS key ({type(key).__name__})")


def verify_signature(sod: Sod) -> x509.Certificate:
    """Check the SOD's CMS signature with its DS certificate and return that certificate.

    With signed attributes (ICAO requires them), the content-type attribute must name the
    LDSSecurityObject and the message-digest attribute must be the content's hash; the signature
    then covers the attributes' DER encoding as a SET. Any failure → :class:`SodError`.
    """
    try:
        signed = sod.content
        if sod.signed_attributes is not None:
            content_type = _attribute(sod.signed_attributes, OID_CONTENT_TYPE)
            if decode_oid(content_type) != sod.content_type:
                raise SodError("the signed content-type attribute does not match the content")
            digest = _attribute(sod.signed_attributes, OID_MESSAGE_DIGEST)
            expected = hashlib.new(sod.digest_algorithm, sod.content).digest()
            if digest.tag != 0x04 or not hmac.compare_digest(digest.value, expected):
                raise SodError("the signed message digest does not match the LDSSecurityObject")
            signed = b"\x31" + sod.signed_attributes.raw[1:]
        certificate = _signer_certificate(sod)
        _check(
            certificate.public_key(),
            sod.signature_algorithm,
            sod.signature,
            signed,
            sod.digest_algorithm,
        )
    except SodError:
        raise
    except InvalidSignature:
        raise SodError("the SOD signature does not verify with the document signer key") from None
    except (LdsError, ValueError, UnsupportedAlgorithm) as exc:
        raise SodError(f"the SOD signature cannot be checked: {exc}") from None
    return certificate
