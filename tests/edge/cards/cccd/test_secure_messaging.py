"""BAC and secure messaging replay ICAO 9303-11 Appendix D (document L898902C<, born 690806,
expiring 940623) byte for byte: every published intermediate value is asserted exactly."""

from __future__ import annotations

import pytest

from edge.cards.cccd.apdu import CommandApdu, PlainChannel, ResponseApdu, read_binary, read_file
from edge.cards.cccd.bac import BacKeys, adjust_parity, authenticate, key_seed
from edge.cards.cccd.errors import (
    AccessDenied,
    SecureMessagingError,
    SecureMessagingRejected,
)
from edge.cards.cccd.mrz import MrzKey
from edge.cards.cccd.secure_messaging import (
    SecureChannel,
    encrypt,
    increment,
    pad,
    retail_mac,
    unpad,
)

H = bytes.fromhex
KEY = MrzKey("L898902C", "690806", "940623")

# Appendix D.2 / D.3
K_SEED = H("239AB9CB282DAF66231DC5A4DF6BFBAE")
K_ENC = H("AB94FDECF2674FDFB9B391F85D7F76F2")
K_MAC = H("7962D9ECE03D1ACD4C76089DCE131543")
RND_IC = H("4608F91988702212")
RND_IFD = H("781723860C06C226")
K_IFD = H("0B795240CB7049B01C19B33E32804F0B")
S = H("781723860C06C2264608F919887022120B795240CB7049B01C19B33E32804F0B")
E_IFD = H("72C29C2371CC9BDB65B779B8E8D37B29ECC154AA56A8799FAE2F498F76ED92F2")
M_IFD = H("5F1448EEA8AD90A7")
CARD_CRYPTOGRAM = H(
    "46B9342A41396CD7386BF5803104D7CEDC122B9132139BAF2EEDC94EE178534F2F2D235D074D7449"
)
KS_ENC = H("979EC13B1CBFE9DCD01AB0FED307EAE5")
KS_MAC = H("F1CB1F1FB5ADF208806B89DC579DC1F8")
SSC = H("887022120C06C226")

# Appendix D.4: SELECT EF.COM, READ BINARY of 4 bytes, READ BINARY of 18 bytes at offset 4.
EXCHANGES = [
    (
        "0CA4020C158709016375432908C044F68E08BF8B92D635FF24F800",
        "990290008E08FA855A5D4C50A8ED9000",
    ),
    (
        "0CB000000D9701048E08ED6705417E96BA5500",
        "8709019FF0EC34F9922651990290008E08AD55CC17140B2DED9000",
    ),
    (
        "0CB000040D9701128E082EA28A70F3C7B53500",
        "871901FB9235F4E4037F2327DCC8964F1F9B8C30F42C8E2FFF224A990290008E08C8B2787EAEA07D749000",
    ),
]
EF_COM = H("60145F0104303130365F36063034303030305C026175")


class ScriptedCard:
    """Answers each APDU with the next scripted response and records what it was sent."""

    def __init__(self, *responses: str) -> None:
        self.responses = [H(r) for r in responses]
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.responses.pop(0)


def fixed_random(*values: bytes):
    queue = list(values)
    return lambda n: queue.pop(0)


def test_document_keys_from_the_mrz() -> None:
    assert key_seed(KEY) == K_SEED
    keys = BacKeys.from_mrz(KEY)
    assert (keys.k_enc, keys.k_mac) == (K_ENC, K_MAC)


def test_parity_adjustment_gives_every_byte_odd_parity() -> None:
    assert adjust_parity(H("AB94FCEDF2664EDF")) == H("AB94FDECF2674FDF")
    assert all(bin(b).count("1") % 2 for b in adjust_parity(bytes(range(256))))


def test_mutual_authentication_cryptogram_and_mac() -> None:
    assert RND_IFD + RND_IC + K_IFD == S
    assert encrypt(K_ENC, S) == E_IFD
    assert retail_mac(K_MAC, pad(E_IFD)) == M_IFD


def test_bac_reproduces_the_published_exchange_and_session_keys() -> None:
    card = ScriptedCard(RND_IC.hex() + "9000", CARD_CRYPTOGRAM.hex() + "9000")
    channel = authenticate(PlainChannel(card), BacKeys.from_mrz(KEY), fixed_random(RND_IFD, K_IFD))
    assert card.sent == [H("0084000008"), H("0082000028") + E_IFD + M_IFD + H("28")]
    assert channel.ssc == SSC
    session = BacKeys.from_seed(H("0036D272F5C350ACAC50C3F572D23600"))
    assert (session.k_enc, session.k_mac) == (KS_ENC, KS_MAC)


def test_protected_select_matches_every_published_step() -> None:
    channel = SecureChannel(PlainChannel(ScriptedCard()), KS_ENC, KS_MAC, SSC)
    assert pad(H("0CA4020C")) == H("0CA4020C80000000")
    assert encrypt(KS_ENC, pad(H("011E"))) == H("6375432908C044F6")
    n = H("887022120C06C2270CA4020C800000008709016375432908C044F68000000000")
    assert retail_mac(KS_MAC, n) == H("BF8B92D635FF24F8")
    protected = channel.protect(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    assert protected.to_bytes() == H(EXCHANGES[0][0])
    assert channel.ssc == H("887022120C06C227")


def test_secure_channel_reads_ef_com_as_published() -> None:
    card = ScriptedCard(*(response for _, response in EXCHANGES))
    channel = SecureChannel(PlainChannel(card), KS_ENC, KS_MAC, SSC)
    assert read_file(channel, 0x011E, "EF.COM", chunk=0xDF) == EF_COM
    assert [apdu.hex().upper() for apdu in card.sent] == [command for command, _ in EXCHANGES]
    assert channel.ssc == H("887022120C06C22C")


def test_response_unwrapping_verifies_and_decrypts() -> None:
    channel = SecureChannel(PlainChannel(ScriptedCard()), KS_ENC, KS_MAC, H("887022120C06C228"))
    channel.protect(read_binary(0, 4))
    response = channel.unprotect(ResponseApdu.from_bytes(H(EXCHANGES[1][1])))
    assert response == ResponseApdu(H("60145F01"), 0x9000)


def test_a_response_with_a_bad_mac_is_refused_and_ends_the_session() -> None:
    altered = bytearray(H(EXCHANGES[0][1]))
    altered[3] ^= 0x01  # DO'99' now says 9001
    card = ScriptedCard(altered.hex(), EXCHANGES[1][1])
    channel = SecureChannel(PlainChannel(card), KS_ENC, KS_MAC, SSC)
    with pytest.raises(SecureMessagingError, match="MAC does not verify"):
        channel.transmit(CommandApdu(0x00, 0xA4, 0x02, 0x0C, H("011E")))
    with pytest.raises(SecureMessagingError, match="session ended"):
        channel.transmit(read_binary(0, 4))
    assert len(card.sent) == 1


def test_the_card_closing_secure_messaging_is_a_clear_error() -> None:
    channel = SecureChannel(PlainChannel(ScriptedCard("6988")), KS_ENC, KS_MAC, SSC)
    with pytest.raises(SecureMessagingRejected, match="6988 .secure messaging data objects"):
        channel.transmit(read_binary(0, 4))


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ("9000", "lacks its status"),
        ("8E08FA855A5D4C50A8ED9000", "lacks its status"),
        ("990290009000", "lacks its status .DO'99'. or MAC"),
        ("850100990290008E08FA855A5D4C50A8ED9000", "unexpected data objects 85"),
        ("99029000FF9000", "not secure-messaging TLVs"),
    ],
)
def test_malformed_protected_responses_are_errors(response: str, message: str) -> None:
    channel = SecureChannel(PlainChannel(ScriptedCard(response)), KS_ENC, KS_MAC, SSC)
    with pytest.raises(SecureMessagingError, match=message):
        channel.transmit(read_binary(0, 4))


def test_wrong_mrz_is_access_denied_after_a_single_mutual_authenticate() -> None:
    card = ScriptedCard(RND_IC.hex() + "9000", "6300")
    with pytest.raises(AccessDenied, match="access denied: the MRZ data does not open this card"):
        authenticate(PlainChannel(card), BacKeys.from_mrz(MrzKey("L898902C", "690806", "940624")))
    assert [apdu[1] for apdu in card.sent] == [0x84, 0x82]


def test_a_card_cryptogram_with_a_bad_mac_is_not_trusted() -> None:
    forged = bytearray(CARD_CRYPTOGRAM)
    forged[-1] ^= 0xFF
    card = ScriptedCard(RND_IC.hex() + "9000", forged.hex() + "9000")
    with pytest.raises(SecureMessagingError, match="fails its MAC"):
        authenticate(PlainChannel(card), BacKeys.from_mrz(KEY), fixed_random(RND_IFD, K_IFD))


def test_a_card_that_does_not_echo_our_nonce_is_not_trusted() -> None:
    card = ScriptedCard(RND_IC.hex() + "9000", CARD_CRYPTOGRAM.hex() + "9000")
    other_nonce = H("0000000000000000")
    with pytest.raises(SecureMessagingError, match="does not echo our nonces"):
        authenticate(PlainChannel(card), BacKeys.from_mrz(KEY), fixed_random(other_nonce, K_IFD))


def test_padding_method_2_round_trips_and_rejects_garbage() -> None:
    assert pad(b"") == H("8000000000000000")
    assert pad(H("01020304050607")) == H("0102030405060780")
    assert pad(H("0102030405060708")) == H("01020304050607088000000000000000")
    assert unpad(pad(H("0000"))) == H("0000")
    for bad in (H("0102030405060708"), H("0100000000000000"), H("80") + bytes(8)):
        with pytest.raises(SecureMessagingError, match="padding"):
            unpad(bad)


def test_send_sequence_counter_wraps_at_64_bits() -> None:
    assert increment(SSC) == H("887022120C06C227")
    assert increment(H("FFFFFFFFFFFFFFFF")) == bytes(8)
