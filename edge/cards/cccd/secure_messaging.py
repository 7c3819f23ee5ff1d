"""BAC secure messaging (ICAO 9303-11 §9.8): 3DES-CBC, the ISO 9797-1 retail MAC, the send
sequence counter, and the channel that wraps every APDU after mutual authentication.

Each command and each response advances the 8-byte send sequence counter (SSC) and is MACed
together with it, so a replayed, reordered or altered message fails its MAC. A response whose
MAC does not verify is never used: the channel raises :class:`SecureMessagingError` and refuses
every later command, because from then on the card's SSC and ours may differ.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from edge.cards.cccd.apdu import SW_OK, Channel, CommandApdu, ResponseApdu, status_error
from edge.cards.cccd.errors import LdsError, SecureMessagingError
from edge.cards.cccd.tlv import encode, parse_all

BLOCK = 8
_ZERO_IV = bytes(BLOCK)
_SM_CLA = 0x0C


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append 80, then 00 up to a multiple of 8 bytes."""
    data += b"\x80"
    return data + bytes(-len(data) % BLOCK)


def unpad(data: bytes) -> bytes:
    """Remove padding method 2; missing or malformed padding is an error."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= BLOCK:
        raise SecureMessagingError("decrypted data does not end in 80 00… padding")
    return stripped[:-1]


def _tdes(key: bytes) -> TripleDES:
    """Two-key 3DES (K1 ‖ K2 ‖ K1); a single 8-byte key gives single DES (K1 = K2 = K3)."""
    if len(key) == BLOCK:
        return TripleDES(key * 3)
    if len(key) == 2 * BLOCK:
        return TripleDES(key + key[:BLOCK])
    raise ValueError(f"DES keys are 8 or 16 bytes, not {len(key)}")


def encrypt(key: bytes, data: bytes) -> bytes:
    """3DES-CBC with a zero IV over data that is already a multiple of 8 bytes."""
    encryptor = Cipher(_tdes(key), modes.CBC(_ZERO_IV)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def decrypt(key: bytes, data: bytes) -> bytes:
    """Inverse of :func:`encrypt`; ciphertext must be whole blocks."""
    if not data or len(data) % BLOCK:
        raise SecureMessagingError(f"ciphertext of {len(data)} bytes is not whole 8-byte blocks")
    decryptor = Cipher(_tdes(key), modes.CBC(_ZERO_IV)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with DES over padded ``data``.

    Single-DES CBC with Ka over every block but the last; the last block is then enciphered with
    Ka, deciphered with Kb, enciphered with Ka — which is exactly 3DES-EDE(Ka, Kb, Ka).
    """
    if not data or len(data) % BLOCK:
        raise ValueError("MAC input must be padded to whole 8-byte blocks")
    chain = encrypt(key[:BLOCK], data[:-BLOCK])[-BLOCK:] if len(data) > BLOCK else _ZERO_IV
    last = bytes(a ^ b for a, b in zip(chain, data[-BLOCK:], strict=True))
    encryptor = Cipher(_tdes(key), modes.ECB()).encryptor()
    return encryptor.update(last) + encryptor.finalize()


def increment(ssc: bytes) -> bytes:
    """The send sequence counter plus one (wrapping, as an unsigned 64-bit number)."""
    return ((int.from_bytes(ssc, "big") + 1) % (1 << 64)).to_bytes(BLOCK, "big")


class SecureChannel:
    """A :class:`Channel` that protects every command and verifies every response.

    ``ssc`` is the counter value after mutual authentication; the channel increments it before
    each command and each response, as ICAO 9303-11 §9.8.4 prescribes.
    """

    def __init__(self, inner: Channel, ks_enc: bytes, ks_mac: bytes, ssc: bytes) -> None:
        self._inner = inner
        self._ks_enc = ks_enc
        self._ks_mac = ks_mac
        self.ssc = ssc
        self._closed = False

    def _mac(self, data: bytes) -> bytes:
        self.ssc = increment(self.ssc)
        return retail_mac(self._ks_mac, pad(self.ssc + data))

    def protect(self, command: CommandApdu) -> CommandApdu:
        """The SM form of ``command``: DO'87' (encrypted data), DO'97' (Le), DO'8E' (MAC)."""
        if command.cla & _SM_CLA:
            raise ValueError("command is already marked as secure messaging")
        cla = command.cla | _SM_CLA
        header = bytes([cla, command.ins, command.p1, command.p2])
        objects = b""
        if command.data:
            objects += encode(0x87, b"\x01" + encrypt(self._ks_enc, pad(command.data)))
        if command.le is not None:
            objects += encode(0x97, bytes([command.le & 0xFF]))
        mac = self._mac(pad(header) + objects)
        return CommandApdu(
            cla, command.ins, command.p1, command.p2, objects + encode(0x8E, mac), le=256
        )

    def unprotect(self, response: ResponseApdu) -> ResponseApdu:
        """Verify the response MAC over DO'87' and DO'99', then decrypt the data.

        A plain status word (no SM objects) means the card ended secure messaging; it is raised
        as the matching card error.
        """
        if not response.data and response.sw != SW_OK:
            raise status_error(response.sw, "secure messaging")
        try:
            objects = {tlv.tag: tlv for tlv in parse_all(response.data)}
        except LdsError as exc:
            raise SecureMessagingError(f"response is not secure-messaging TLVs: {exc}") from None
        unknown = set(objects) - {0x87, 0x99, 0x8E}
        if unknown:
            names = ", ".join(f"{tag:X}" for tag in sorted(unknown))
            raise SecureMessagingError(f"response carries unexpected data objects {names}")
        if 0x8E not in objects or 0x99 not in objects:
            raise SecureMessagingError("response lacks its status (DO'99') or MAC (DO'8E')")
        covered = b"".join(objects[tag].raw for tag in (0x87, 0x99) if tag in objects)
        if not hmac.compare_digest(self._mac(covered), objects[0x8E].value):
            raise SecureMessagingError(
                "response MAC does not verify: the reply was altered or the session is out of step"
            )
        status = objects[0x99].value
        if len(status) != 2:
            raise SecureMessagingError(f"DO'99' holds {len(status)} bytes, not a status word")
        data = b""
        if 0x87 in objects:
            encrypted = objects[0x87].value
            if encrypted[:1] != b"\x01":
                raise SecureMessagingError("DO'87' does not start with padding indicator 01")
            data = unpad(decrypt(self._ks_enc, encrypted[1:]))
        return ResponseApdu(data, int.from_bytes(status, "big"))

    def transmit(self, command: CommandApdu) -> ResponseApdu:
        """Send ``command`` protected and return the verified, decrypted response."""
        if self._closed:
            raise SecureMessagingError(
                "the secure-messaging session ended after an earlier error; authenticate again"
            )
        try:
            return self.unprotect(self._inner.transmit(self.protect(command)))
        except Exception:
            self._closed = True
            raise
