"""Basic Access Control (ICAO 9303-11 §4.3 and §9.7): keys from the MRZ, one mutual
authentication, and the secure-messaging session it opens.

A wrong MRZ key shows up as the card refusing MUTUAL AUTHENTICATE. That is reported at once as
:class:`AccessDenied` and never retried: some chips slow down or count failures, and a gate must
not hammer a card someone holds to it with a typo'd key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from edge.cards.cccd.apdu import (
    SW_OK,
    Channel,
    expect_ok,
    get_challenge,
    mutual_authenticate,
    status_error,
)
from edge.cards.cccd.errors import AccessDenied, SecureMessagingError
from edge.cards.cccd.mrz import MrzKey
from edge.cards.cccd.secure_messaging import SecureChannel, decrypt, encrypt, pad, retail_mac

ENC = 1
MAC = 2
NONCE = 8
KEY = 16

Random = Callable[[int], bytes]

# What chips answer to a cryptogram made with the wrong keys (6300 is ICAO's; others are seen).
_REFUSED = {0x6300, 0x6982, 0x6A80, 0x6988}

ACCESS_DENIED = (
    "access denied: the MRZ data does not open this card (check the document number — for a "
    "CCCD the last 9 digits of the ID number —, the date of birth and the date of expiry)"
)


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's lowest bit so the byte has odd parity, as DES keys require."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) % 2) for b in key)


def derive_key(seed: bytes, counter: int) -> bytes:
    """KDF of 9303-11 §9.7.1: SHA-1(seed ‖ counter)[0:16], parity adjusted (counter 1 = ENC,
    2 = MAC)."""
    digest = hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()
    return adjust_parity(digest[:KEY])


@dataclass(frozen=True, slots=True)
class BacKeys:
    """A 3DES key pair derived from one seed: the document basic access keys (seed from the
    MRZ) or, after mutual authentication, the session keys (seed K.IFD ⊕ K.IC)."""

    k_enc: bytes
    k_mac: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> BacKeys:
        return cls(derive_key(seed, ENC), derive_key(seed, MAC))

    @classmethod
    def from_mrz(cls, key: MrzKey) -> BacKeys:
        return cls.from_seed(key_seed(key))


def key_seed(key: MrzKey) -> bytes:
    """K_seed: the first 16 bytes of SHA-1 over the MRZ information."""
    return hashlib.sha1(key.mrz_information().encode("ascii")).digest()[:KEY]


def authenticate(channel: Channel, keys: BacKeys, random: Random = os.urandom) -> SecureChannel:
    """Run GET CHALLENGE and one MUTUAL AUTHENTICATE; return the secure channel it opens.

    Raises :class:`AccessDenied` when the card refuses the cryptogram (wrong MRZ key) and
    :class:`SecureMessagingError` when the card's own cryptogram does not check out.
    """
    rnd_ic = expect_ok(channel.transmit(get_challenge()), "GET CHALLENGE")
    if len(rnd_ic) != NONCE:
        raise SecureMessagingError(f"GET CHALLENGE returned {len(rnd_ic)} bytes, not 8")
    rnd_ifd, k_ifd = random(NONCE), random(KEY)
    e_ifd = encrypt(keys.k_enc, rnd_ifd + rnd_ic + k_ifd)
    response = channel.transmit(mutual_authenticate(e_ifd + retail_mac(keys.k_mac, pad(e_ifd))))
    if response.sw in _REFUSED:
        raise AccessDenied(ACCESS_DENIED)
    if response.sw != SW_OK:
        raise status_error(response.sw, "MUTUAL AUTHENTICATE")
    answer = response.data
    if len(answer) != 40:
        raise SecureMessagingError(f"MUTUAL AUTHENTICATE returned {len(answer)} bytes, not 40")
    e_ic, m_ic = answer[:32], answer[32:]
    if not hmac.compare_digest(retail_mac(keys.k_mac, pad(e_ic)), m_ic):
        raise SecureMessagingError("the card's authentication cryptogram fails its MAC")
    plain = decrypt(keys.k_enc, e_ic)
    if plain[:NONCE] != rnd_ic or plain[NONCE : 2 * NONCE] != rnd_ifd:
        raise SecureMessagingError("the card's authentication cryptogram does not echo our nonces")
    k_ic = plain[2 * NONCE :]
    session = BacKeys.from_seed(bytes(a ^ b for a, b in zip(k_ifd, k_ic, strict=True)))
    ssc = rnd_ic[4:] + rnd_ifd[4:]
    return SecureChannel(channel, session.k_enc, session.k_mac, ssc)
