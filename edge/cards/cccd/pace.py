"""What EF.CardAccess says about PACE (ICAO 9303-11 §9.2): the PACEInfo entries a chip offers.

EF.CardAccess sits in the master file and is readable before any access control. It is a SET of
SecurityInfos; a PACEInfo is SEQUENCE { protocol OID under id-PACE, version INTEGER,
parameterId INTEGER OPTIONAL }. This module only reports them: the reader opens CCCDs with BAC,
which published CCCD reader logs show working (not yet confirmed on our own hardware). PACE
itself — a key agreement on an elliptic-curve generator mapped from a nonce, which
``cryptography`` has no API for — is not implemented yet.
"""

from __future__ import annotations

from pydantic import BaseModel

from edge.cards.cccd.errors import LdsError
from edge.cards.cccd.tlv import decode_int, decode_oid, parse_one

ID_PACE = "0.4.0.127.0.7.2.2.4"

_MAPPINGS = {1: "DH-GM", 2: "ECDH-GM", 3: "DH-IM", 4: "ECDH-IM", 6: "ECDH-CAM"}
_CIPHERS = {1: "3DES-CBC-CBC", 2: "AES-CBC-CMAC-128", 3: "AES-CBC-CMAC-192", 4: "AES-CBC-CMAC-256"}
_PARAMETERS = {
    0: "1024-bit MODP group with 160-bit prime order subgroup",
    1: "2048-bit MODP group with 224-bit prime order subgroup",
    2: "2048-bit MODP group with 256-bit prime order subgroup",
    8: "NIST P-192",
    9: "BrainpoolP192r1",
    10: "NIST P-224",
    11: "BrainpoolP224r1",
    12: "NIST P-256",
    13: "BrainpoolP256r1",
    14: "BrainpoolP320r1",
    15: "NIST P-384",
    16: "BrainpoolP384r1",
    17: "BrainpoolP512r1",
    18: "NIST P-521",
}


class PaceInfo(BaseModel):
    """One PACE variant the chip offers."""

    protocol: str
    """The protocol OID, e.g. 0.4.0.127.0.7.2.2.4.2.2."""
    name: str
    """Mapping and cipher suite, e.g. ECDH-GM-AES-CBC-CMAC-128."""
    version: int
    parameter_id: int | None
    parameters: str | None
    """The standardized domain parameters the ID names, e.g. BrainpoolP256r1."""


def _name(oid: str) -> str:
    arcs = oid.removeprefix(ID_PACE + ".").split(".")
    mapping = _MAPPINGS.get(int(arcs[0]), f"mapping {arcs[0]}")
    return f"{mapping}-{_CIPHERS.get(int(arcs[1]), f'cipher {arcs[1]}')}"


def parse_card_access(data: bytes) -> list[PaceInfo]:
    """The PACEInfos in EF.CardAccess (other SecurityInfos are skipped); malformed → LdsError."""
    infos = []
    for info in parse_one(data, 0x31).children():
        fields = info.children() if info.tag == 0x30 else []
        if not fields:
            raise LdsError("EF.CardAccess holds an entry that is not a SecurityInfo SEQUENCE")
        oid = decode_oid(fields[0])
        # PACEInfo OIDs have two arcs below id-PACE; PACEDomainParameterInfo has one.
        if not oid.startswith(ID_PACE + ".") or oid.count(".") != ID_PACE.count(".") + 2:
            continue
        if len(fields) < 2:
            raise LdsError(f"PACEInfo {oid} has no version")
        parameter_id = decode_int(fields[2]) if len(fields) > 2 else None
        infos.append(
            PaceInfo(
                protocol=oid,
                name=_name(oid),
                version=decode_int(fields[1]),
                parameter_id=parameter_id,
                parameters=_PARAMETERS.get(parameter_id) if parameter_id is not None else None,
            )
        )
    return infos
