"""A contactless eMRTD chip (ICAO 9303) in software: what a CCCD does on the other side of the
PN532, for tests and for ``gatectl reader emulate``.

It is written from the specification (ICAO 9303-11 §4.3, §9.7, §9.8; ISO 7816-4), on purpose
without importing anything from the reader in :mod:`edge.cards.cccd`: if both sides shared the
3DES, MAC or counter code, one bug there would make them agree with each other and disagree
with every real card. The crypto here is also built differently (an explicit per-block CBC
loop, the MAC as its three ISO 9797-1 steps) so the two cannot drift together.

The chip:

- answers SELECT of the eMRTD application and of files by identifier; EF.CardAccess is in the
  master file and readable without access control, every application file needs BAC;
- does BAC: GET CHALLENGE, then MUTUAL AUTHENTICATE with keys derived from its own MRZ; a
  cryptogram with a wrong MAC or nonce gets 6300 and uses up the challenge;
- after BAC, accepts only secure-messaging commands: checks the MAC over the incremented send
  sequence counter, decrypts DO'87', answers with DO'87'/DO'99'/DO'8E'. A bad MAC, a missing MAC
  or a plain command ends the session (6988/6987) and access is lost until the next BAC;
- serves READ BINARY at any offset up to 32767, with 6282 when the file ends before Le, 6B00
  past its end, and 6982 for files it keeps locked (DG3, fingerprints, needs EAC).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from firmware_tools.emulators.emrtd_data import EmrtdDocument

AID = bytes.fromhex("A0000002471001")

OK = 0x9000
EOF_BEFORE_LE = 0x6282
AUTH_FAILED = 0x6300
WRONG_LENGTH = 0x6700
SECURITY_STATUS = 0x6982
CONDITIONS = 0x6985
NO_CURRENT_EF = 0x6986
SM_MISSING = 0x6987
SM_INCORRECT = 0x6988
NOT_FOUND = 0x6A82
BAD_P1P2 = 0x6A86
OUTSIDE_EF = 0x6B00
BAD_INS = 0x6D00
BAD_CLA = 0x6E00


class _Refusal(Exception):
    """Stops processing of one command with status word ``sw``."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


# --- DES, built from single-block operations ---


def _block(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    """One 8-byte block through DES (8-byte key) or two-key 3DES (16-byte key)."""
    full = key * 3 if len(key) == 8 else key + key[:8]
    cipher = Cipher(TripleDES(full), modes.ECB())
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(block) + worker.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _cbc_encrypt(key: bytes, data: bytes) -> bytes:
    chain, out = bytes(8), b""
    for i in range(0, len(data), 8):
        chain = _block(key, _xor(data[i : i + 8], chain))
        out += chain
    return out


def _cbc_decrypt(key: bytes, data: bytes) -> bytes:
    chain, out = bytes(8), b""
    for i in range(0, len(data), 8):
        block = data[i : i + 8]
        out += _xor(_block(key, block, decrypt=True), chain)
        chain = block
    return out


def _padded(data: bytes) -> bytes:
    """ISO 9797-1 padding method 2."""
    out = data + b"\x80"
    while len(out) % 8:
        out += b"\x00"
    return out


def _unpadded(data: bytes) -> bytes:
    end = len(data)
    while end and data[end - 1] == 0:
        end -= 1
    if not end or data[end - 1] != 0x80:
        raise _Refusal(SM_INCORRECT)
    return data[: end - 1]


def _retail_mac(key: bytes, message: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3: DES-CBC with Ka, then decipher Kb, encipher Ka."""
    ka, kb = key[:8], key[8:]
    data = _padded(message)
    state = bytes(8)
    for i in range(0, len(data), 8):
        state = _block(ka, _xor(state, data[i : i + 8]))
    return _block(ka, _block(kb, state, decrypt=True))


def _des_key(seed: bytes, counter: int) -> bytes:
    """SHA-1(seed ‖ counter) truncated to 16 bytes, each byte with odd parity."""
    raw = hashlib.sha1(seed + bytes([0, 0, 0, counter])).digest()[:16]
    return bytes(next(c for c in (b & 0xFE, b | 1) if c.bit_count() % 2) for b in raw)


# --- APDUs ---


@dataclass(frozen=True)
class _Apdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None

    @classmethod
    def parse(cls, raw: bytes) -> _Apdu:
        """Short APDUs, cases 1-4; anything else (extended, truncated) is a wrong length."""
        if len(raw) < 4:
            raise _Refusal(WRONG_LENGTH)
        head, body = raw[:4], raw[4:]
        data, le = b"", None
        if len(body) == 1:
            le = body[0] or 256
        elif body:
            lc = body[0]
            if lc == 0 or len(body) not in (1 + lc, 2 + lc):
                raise _Refusal(WRONG_LENGTH)
            data = body[1 : 1 + lc]
            if len(body) == 2 + lc:
                le = body[-1] or 256
        return cls(head[0], head[1], head[2], head[3], data, le)


def _objects(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, value, whole encoding) of each one-byte-tag data object in ``data``."""
    found = []
    i = 0
    while i < len(data):
        start, tag = i, data[i]
        if i + 1 >= len(data):
            raise _Refusal(SM_INCORRECT)
        length, i = data[i + 1], i + 2
        if length & 0x80:
            size = length & 0x7F
            if size not in (1, 2) or i + size > len(data):
                raise _Refusal(SM_INCORRECT)
            length, i = int.from_bytes(data[i : i + size], "big"), i + size
        if i + length > len(data):
            raise _Refusal(SM_INCORRECT)
        found.append((tag, data[i : i + length], data[start : i + length]))
        i += length
    return found


def _do(tag: int, value: bytes) -> bytes:
    n = len(value)
    size = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else b"\x82" + n.to_bytes(2)
    return bytes([tag]) + size + value


@dataclass
class _Session:
    ks_enc: bytes
    ks_mac: bytes
    ssc: int

    def next_ssc(self) -> bytes:
        self.ssc = (self.ssc + 1) & 0xFFFF_FFFF_FFFF_FFFF
        return self.ssc.to_bytes(8, "big")


@dataclass
class EmrtdCard:
    """The chip. ``process_apdu`` takes one command APDU and returns the response APDU.

    ``uid`` and ``ats`` are what an ISO 14443-4 type A reader sees at activation (hand them to
    the PN532 emulator's card); eMRTDs use a random UID (first byte 08), new for every instance.
    """

    document: EmrtdDocument
    random: Callable[[int], bytes] = os.urandom
    uid: bytes = field(init=False)
    ats: bytes = bytes.fromhex("0578807002")  # TL, T0 (FSCI 8: 256-byte frames), TA, TB, TC
    _in_application: bool = field(default=False, init=False)
    _current: int | None = field(default=None, init=False)
    _challenge: bytes | None = field(default=None, init=False)
    _session: _Session | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.uid = b"\x08" + self.random(3)
        seed = hashlib.sha1(self.document.mrz_information.encode("ascii")).digest()[:16]
        self._k_enc, self._k_mac = _des_key(seed, 1), _des_key(seed, 2)

    @property
    def authenticated(self) -> bool:
        """True while a BAC secure-messaging session is open."""
        return self._session is not None

    def process_apdu(self, apdu: bytes) -> bytes:
        """Execute one command APDU; always returns a response (data + SW), never raises."""
        try:
            command = _Apdu.parse(bytes(apdu))
            if command.cla & ~0x0C:
                raise _Refusal(BAD_CLA)
            if command.cla & 0x0C == 0x0C:
                return self._secure(command)
            if self._session is not None:
                self._session = None  # a plain command aborts secure messaging
            data, sw = self._execute(command)
        except _Refusal as refusal:
            data, sw = b"", refusal.sw
        return data + sw.to_bytes(2, "big")

    # --- secure messaging -----------------------------------------------------------------------

    def _secure(self, command: _Apdu) -> bytes:
        session = self._session
        if session is None:
            raise _Refusal(SECURITY_STATUS)
        try:
            inner = self._unwrap(session, command)
        except _Refusal:
            self._session = None
            raise
        try:
            data, sw = self._execute(inner)
        except _Refusal as refusal:
            data, sw = b"", refusal.sw
        response = b""
        if data:
            response += _do(0x87, b"\x01" + _cbc_encrypt(session.ks_enc, _padded(data)))
        response += _do(0x99, sw.to_bytes(2, "big"))
        mac = _retail_mac(session.ks_mac, session.next_ssc() + response)
        return response + _do(0x8E, mac) + sw.to_bytes(2, "big")

    def _unwrap(self, session: _Session, command: _Apdu) -> _Apdu:
        """Check DO'8E' and decrypt DO'87'; the plain command inside, or a refusal."""
        objects = _objects(command.data)
        tags = [tag for tag, _, _ in objects]
        if not tags or tags[-1] != 0x8E:
            raise _Refusal(SM_MISSING)
        if set(tags[:-1]) - {0x87, 0x97} or len(set(tags)) != len(tags):
            raise _Refusal(SM_INCORRECT)
        header = bytes([command.cla, command.ins, command.p1, command.p2])
        covered = _padded(header) + b"".join(raw for tag, _, raw in objects if tag != 0x8E)
        expected = _retail_mac(session.ks_mac, session.next_ssc() + covered)
        if not hmac.compare_digest(expected, objects[-1][1]):
            raise _Refusal(SM_INCORRECT)
        values = {tag: value for tag, value, _ in objects}
        data = b""
        if 0x87 in values:
            encrypted = values[0x87]
            if encrypted[:1] != b"\x01" or (len(encrypted) - 1) % 8 or len(encrypted) < 9:
                raise _Refusal(SM_INCORRECT)
            data = _unpadded(_cbc_decrypt(session.ks_enc, encrypted[1:]))
        le = None
        if 0x97 in values:
            if len(values[0x97]) != 1:
                raise _Refusal(SM_INCORRECT)
            le = values[0x97][0] or 256
        return _Apdu(command.cla & ~0x0C, command.ins, command.p1, command.p2, data, le)

    # --- commands ---------------------------------------------------------------------------------

    def _execute(self, command: _Apdu) -> tuple[bytes, int]:
        handlers = {
            0xA4: self._select,
            0xB0: self._read_binary,
            0x84: self._get_challenge,
            0x82: self._mutual_authenticate,
        }
        handler = handlers.get(command.ins)
        if handler is None:
            raise _Refusal(BAD_INS)
        return handler(command)

    def _select(self, command: _Apdu) -> tuple[bytes, int]:
        if command.p2 != 0x0C:
            raise _Refusal(BAD_P1P2)  # only "no response data": this chip returns no FCI
        if command.p1 == 0x04:
            if command.data != AID:
                raise _Refusal(NOT_FOUND)
            # Selecting the application starts over: no file, no challenge, no session.
            self._in_application, self._current = True, None
            self._challenge, self._session = None, None
            return b"", OK
        if command.p1 not in (0x00, 0x02) or len(command.data) != 2:
            raise _Refusal(BAD_P1P2)
        fid = int.from_bytes(command.data, "big")
        files = self.document.files if self._in_application else self.document.master_files
        if fid not in files:
            raise _Refusal(NOT_FOUND)
        self._current = fid
        return b"", OK

    def _read_binary(self, command: _Apdu) -> tuple[bytes, int]:
        if self._current is None:
            raise _Refusal(NO_CURRENT_EF)
        if self._in_application and (
            self._session is None or self._current in self.document.locked_files
        ):
            raise _Refusal(SECURITY_STATUS)
        if command.p1 & 0x80:
            raise _Refusal(BAD_P1P2)  # short EF identifier addressing is not offered
        if command.le is None:
            raise _Refusal(WRONG_LENGTH)
        files = self.document.files if self._in_application else self.document.master_files
        content = files[self._current]
        offset = (command.p1 << 8) | command.p2
        if offset >= len(content):
            raise _Refusal(OUTSIDE_EF)
        chunk = content[offset : offset + command.le]
        return chunk, OK if len(chunk) == command.le else EOF_BEFORE_LE

    def _get_challenge(self, command: _Apdu) -> tuple[bytes, int]:
        if command.le != 8 or command.p1 or command.p2:
            raise _Refusal(WRONG_LENGTH)
        self._challenge = self.random(8)
        return self._challenge, OK

    def _mutual_authenticate(self, command: _Apdu) -> tuple[bytes, int]:
        challenge, self._challenge = self._challenge, None  # one attempt per challenge
        if challenge is None or not self._in_application or self._session is not None:
            raise _Refusal(CONDITIONS)
        if len(command.data) != 40:
            raise _Refusal(WRONG_LENGTH)
        e_ifd, m_ifd = command.data[:32], command.data[32:]
        if not hmac.compare_digest(_retail_mac(self._k_mac, e_ifd), m_ifd):
            raise _Refusal(AUTH_FAILED)
        plain = _cbc_decrypt(self._k_enc, e_ifd)  # RND.IFD ‖ RND.IC ‖ K.IFD
        rnd_ifd, k_ifd = plain[:8], plain[16:32]
        if plain[8:16] != challenge:
            raise _Refusal(AUTH_FAILED)
        k_ic = self.random(16)
        e_ic = _cbc_encrypt(self._k_enc, challenge + rnd_ifd + k_ic)
        seed = _xor(k_ifd, k_ic)
        self._session = _Session(
            _des_key(seed, 1), _des_key(seed, 2), int.from_bytes(challenge[4:] + rnd_ifd[4:])
        )
        return e_ic + _retail_mac(self._k_mac, e_ic), OK
