"""The reader against the independently written eMRTD chip emulator, APDU for APDU through a
direct transceive: full reads, wrong keys, forged data groups, foreign signers, broken MACs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from edge.cards.cccd.apdu import (
    PlainChannel,
    expect_ok,
    read_binary,
    read_file,
    select_application,
    select_file,
)
from edge.cards.cccd.bac import BacKeys, authenticate
from edge.cards.cccd.errors import (
    AccessDenied,
    CardError,
    FileNotFound,
    LdsError,
    SecureMessagingError,
    SecureMessagingRejected,
    SecurityStatusNotSatisfied,
)
from edge.cards.cccd.lds import EMRTD_AID
from edge.cards.cccd.mrz import MrzKey
from edge.cards.cccd.reader import CccdReader
from firmware_tools.emulators.emrtd import EmrtdCard
from firmware_tools.emulators.emrtd_data import (
    FORGED,
    Citizen,
    EmrtdDocument,
    SigningPki,
    build_document,
    der,
    make_pki,
)

DG1, DG2, DG3, DG13 = 0x0101, 0x0102, 0x0103, 0x010D


class Wire:
    """A direct transceive to the card that records every APDU and can alter one in transit."""

    def __init__(
        self,
        card: EmrtdCard,
        *,
        alter_command: tuple[int, Callable[[bytes], bytes]] | None = None,
        alter_response: tuple[int, Callable[[bytes], bytes]] | None = None,
    ) -> None:
        self.card = card
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self._alter_command = alter_command
        self._alter_response = alter_response

    def __call__(self, apdu: bytes) -> bytes:
        index = len(self.sent)
        if self._alter_command and self._alter_command[0] == index:
            apdu = self._alter_command[1](apdu)
        self.sent.append(apdu)
        response = self.card.process_apdu(apdu)
        if self._alter_response and self._alter_response[0] == index:
            response = self._alter_response[1](response)
        self.received.append(response)
        return response

    def instructions(self) -> list[int]:
        return [apdu[1] for apdu in self.sent]

    def first_secure(self) -> int:
        """Index of the first secure-messaging APDU."""
        return next(i for i, apdu in enumerate(self.sent) if apdu[0] & 0x0C == 0x0C)


def key_of(document: EmrtdDocument) -> MrzKey:
    return MrzKey(
        document.mrz_document_number, document.mrz_date_of_birth, document.mrz_date_of_expiry
    )


def flip(position: int) -> Callable[[bytes], bytes]:
    def alter(data: bytes) -> bytes:
        changed = bytearray(data)
        changed[position] ^= 0x01
        return bytes(changed)

    return alter


@pytest.fixture(scope="module")
def pki() -> SigningPki:
    return make_pki()


@pytest.fixture(scope="module")
def document(pki: SigningPki) -> EmrtdDocument:
    return build_document(pki=pki)


@pytest.fixture(scope="module")
def rsa_pki() -> SigningPki:
    return make_pki(key="rsa")


def test_full_read_returns_the_cards_data_and_passes_passive_authentication(
    document: EmrtdDocument, pki: SigningPki
) -> None:
    result = CccdReader(Wire(EmrtdCard(document)), csca=[pki.csca]).read(key_of(document))

    person = Citizen()
    data = result.personal_data
    assert data is not None
    assert (data.id_number, data.full_name, data.sex) == (person.id_number, person.full_name, "Nữ")
    assert (data.date_of_birth, data.issue_date, data.expiry_date) == (
        "15/09/2008",
        "03/10/2022",
        "15/09/2033",
    )
    assert (data.nationality, data.ethnicity, data.religion) == ("Việt Nam", "Kinh", "Không")
    assert (data.home_town, data.residence) == (person.home_town, person.residence)
    assert data.identifying_marks == person.identifying_marks
    assert (data.father_name, data.mother_name) == (person.father_name, person.mother_name)
    assert data.spouse_name is None and data.extra == {}

    assert result.mrz.document_number == "208001234"
    assert result.mrz.optional_data_1 == person.id_number
    assert result.mrz.primary_identifier == "NGUYEN"
    assert result.mrz.secondary_identifier == "THI MINH CHAU"
    assert result.mrz.check_digits_valid

    assert result.face is not None and result.face.format == "jpeg"
    assert (result.face.width, result.face.height) == (240, 320)
    assert result.face_rgb is not None and result.face_rgb.shape == (320, 240, 3)
    assert np.abs(result.face_rgb.astype(int) - document.face).mean() < 8

    verdict = result.passive_authentication
    assert verdict.passed
    assert [(c.number, c.status) for c in verdict.data_groups] == [(1, "ok"), (2, "ok"), (13, "ok")]
    assert verdict.signer == document.pki.ds.subject.rfc4514_string()
    assert result.data_groups == [1, 2, 3, 13]
    assert [(p.name, p.parameters) for p in result.pace] == [
        ("ECDH-GM-AES-CBC-CMAC-128", "BrainpoolP256r1")
    ]


def test_wrong_mrz_is_access_denied_after_exactly_one_mutual_authenticate(
    document: EmrtdDocument,
) -> None:
    card = EmrtdCard(document)
    wire = Wire(card)
    wrong = MrzKey(document.mrz_document_number, "080916", document.mrz_date_of_expiry)
    with pytest.raises(AccessDenied, match="^access denied: the MRZ data does not open this card"):
        CccdReader(wire).read(wrong)
    assert wire.instructions().count(0x82) == 1
    assert wire.sent[-1][1] == 0x82 and wire.received[-1] == bytes.fromhex("6300")
    assert not card.authenticated

    # The card is not locked: the right key still opens it.
    assert CccdReader(Wire(card)).read(key_of(document)).mrz.document_number == "208001234"


@pytest.mark.parametrize("forged", [1, 2, 13])
def test_a_data_group_rewritten_after_signing_fails_its_hash(forged: int, pki: SigningPki) -> None:
    document = build_document(pki=pki, forged=forged)
    result = CccdReader(Wire(EmrtdCard(document)), csca=[pki.csca]).read(key_of(document))
    verdict = result.passive_authentication
    statuses = {check.number: check.status for check in verdict.data_groups}
    assert statuses == {n: "hash mismatch" if n == forged else "ok" for n in (1, 2, 13)}
    assert verdict.signature_ok and verdict.chain == "ok"
    assert not verdict.passed
    if forged == 13:
        assert result.personal_data is not None
        assert result.personal_data.full_name == FORGED["full_name"]


def test_an_altered_data_group_that_no_longer_parses_says_it_was_altered(pki: SigningPki) -> None:
    document = build_document(pki=pki)
    document.files[DG1] = der(0x61, der(0x5F1F, b"NOT AN MRZ"))
    with pytest.raises(LdsError, match=r"has 10 \(DG1 also fails passive authentication: hash"):
        CccdReader(Wire(EmrtdCard(document)), csca=[pki.csca]).read(key_of(document))


def test_progress_is_reported_for_every_file(document: EmrtdDocument) -> None:
    seen: dict[str, tuple[int, int]] = {}
    reader = CccdReader(
        Wire(EmrtdCard(document)), progress=lambda n, d, t: seen.update({n: (d, t)})
    )
    reader.read(key_of(document))
    names = {"EF.CardAccess": 0x011C, "EF.COM": 0x011E, "DG1": DG1, "DG2": DG2, "DG13": DG13}
    sizes = {**document.files, **document.master_files}
    assert {n: seen[n] for n in names} == {n: (len(sizes[f]),) * 2 for n, f in names.items()}
    assert set(seen) == {*names, "EF.SOD"}


@pytest.mark.parametrize(
    ("csca_name", "reason"),
    [
        ("Test CSCA Viet Nam", "does not verify with any matching CSCA"),
        ("Some Other CSCA", "no configured CSCA is named"),
    ],
)
def test_a_sod_signed_under_a_csca_not_in_the_list_fails_the_chain(
    document: EmrtdDocument, csca_name: str, reason: str
) -> None:
    stranger = make_pki(name=csca_name)
    result = CccdReader(Wire(EmrtdCard(document)), csca=[stranger.csca]).read(key_of(document))
    verdict = result.passive_authentication
    assert verdict.signature_ok
    assert all(check.status == "ok" for check in verdict.data_groups)
    assert verdict.chain == "failed" and reason in (verdict.chain_error or "")
    assert not verdict.passed


def test_without_a_csca_list_the_chain_is_not_checked_and_nothing_passes(
    document: EmrtdDocument,
) -> None:
    verdict = CccdReader(Wire(EmrtdCard(document))).read(key_of(document)).passive_authentication
    assert verdict.signature_ok and verdict.chain == "not checked"
    assert not verdict.passed


@pytest.mark.parametrize("scheme", ["rsa", "rsa-pss"])
def test_rsa_document_signers_verify(scheme: str, rsa_pki: SigningPki) -> None:
    document = build_document(pki=rsa_pki, scheme=scheme)  # type: ignore[arg-type]
    result = CccdReader(Wire(EmrtdCard(document)), csca=[rsa_pki.csca]).read(key_of(document))
    assert result.passive_authentication.passed


def test_jpeg_2000_portrait_is_decoded(pki: SigningPki) -> None:
    document = build_document(pki=pki, image_format="jpeg2000")
    result = CccdReader(Wire(EmrtdCard(document)), csca=[pki.csca]).read(key_of(document))
    assert result.face is not None and result.face.format == "jpeg2000"
    assert result.face_rgb is not None
    assert np.abs(result.face_rgb.astype(int) - document.face).mean() < 8


def test_a_mac_error_at_the_card_closes_the_session_and_is_reported(
    document: EmrtdDocument,
) -> None:
    card = EmrtdCard(document)
    probe = Wire(EmrtdCard(document))
    CccdReader(probe).read(key_of(document))
    third_secure = probe.first_secure() + 2
    # The protected APDU ends in DO'8E' (8 MAC bytes) and Le 00: flip the MAC's last byte.
    wire = Wire(card, alter_command=(third_secure, flip(-2)))
    with pytest.raises(SecureMessagingRejected, match="6988"):
        CccdReader(wire).read(key_of(document))
    assert wire.received[-1] == bytes.fromhex("6988")
    assert len(wire.sent) == third_secure + 1  # nothing sent after the refusal
    assert not card.authenticated


def test_an_altered_card_response_is_refused(document: EmrtdDocument) -> None:
    probe = Wire(EmrtdCard(document))
    CccdReader(probe).read(key_of(document))
    read = probe.first_secure() + 1  # READ BINARY of EF.COM's first bytes: answer has DO'87'
    wire = Wire(EmrtdCard(document), alter_response=(read, flip(4)))
    with pytest.raises(SecureMessagingError, match="MAC does not verify"):
        CccdReader(wire).read(key_of(document))
    assert len(wire.sent) == read + 1


def test_long_dg2_is_read_in_chunks_at_increasing_offsets(document: EmrtdDocument) -> None:
    wire = Wire(EmrtdCard(document))
    result = CccdReader(wire, chunk=100).read(key_of(document))
    dg2 = document.files[DG2]
    assert len(dg2) > 100 * 100  # P1 carries the high byte of most offsets
    # Secure-messaging headers are in the clear: split the reads at each SELECT.
    groups: list[list[int]] = []
    for apdu in wire.sent:
        if apdu[1] == 0xA4:
            groups.append([])
        elif apdu[1] == 0xB0 and groups:
            groups[-1].append((apdu[2] << 8) | apdu[3])
    offsets = max(groups, key=len)
    assert offsets == [0, *range(4, len(dg2), 100)]
    assert result.face is not None and result.face.data in dg2


def test_files_beyond_32k_are_refused_clearly(pki: SigningPki) -> None:
    document = build_document(pki=pki, portrait_size=(480, 640))
    assert len(document.files[DG2]) > 32768
    with pytest.raises(LdsError, match="files over 32768 bytes need READ BINARY with odd INS"):
        CccdReader(Wire(EmrtdCard(document))).read(key_of(document))


# --- the emulated chip's own conduct, seen through the reader's APDU layer ---


def open_session(document: EmrtdDocument) -> tuple[EmrtdCard, PlainChannel]:
    card = EmrtdCard(document)
    plain = PlainChannel(card.process_apdu)
    expect_ok(plain.transmit(select_application(EMRTD_AID)), "select")
    return card, plain


def test_application_files_need_bac(document: EmrtdDocument) -> None:
    _, plain = open_session(document)
    with pytest.raises(SecurityStatusNotSatisfied, match="6982"):
        read_file(plain, DG1, "DG1", chunk=0xDF)


def test_locked_and_missing_files_answer_inside_secure_messaging(document: EmrtdDocument) -> None:
    card, plain = open_session(document)
    channel = authenticate(plain, BacKeys.from_mrz(key_of(document)))
    with pytest.raises(SecurityStatusNotSatisfied, match="reading DG3"):
        read_file(channel, DG3, "DG3", chunk=0xDF)
    with pytest.raises(FileNotFound, match="selecting DG4: the card answered 6A82"):
        read_file(channel, 0x0104, "DG4", chunk=0xDF)
    assert read_file(channel, DG1, "DG1", chunk=0xDF) == document.files[DG1]
    assert channel.transmit(read_binary(len(document.files[DG1]), 1)).sw == 0x6B00
    assert card.authenticated


def test_a_plain_command_ends_secure_messaging(document: EmrtdDocument) -> None:
    card, plain = open_session(document)
    authenticate(plain, BacKeys.from_mrz(key_of(document)))
    assert card.authenticated
    assert plain.transmit(select_file(DG1)).sw == 0x9000
    assert not card.authenticated
    assert plain.transmit(read_binary(0, 4)).sw == 0x6982


def test_mutual_authenticate_needs_a_fresh_challenge(document: EmrtdDocument) -> None:
    card, plain = open_session(document)
    with pytest.raises(AccessDenied):
        authenticate(plain, BacKeys.from_mrz(MrzKey("000000000", "000101", "000101")))
    # The failed attempt used the challenge up; replaying MUTUAL AUTHENTICATE alone is refused.
    assert card.process_apdu(bytes.fromhex("0082000028") + bytes(40) + b"\x28") == b"\x69\x85"


def test_malformed_apdus_get_status_words_not_exceptions(document: EmrtdDocument) -> None:
    card = EmrtdCard(document)
    assert card.process_apdu(b"\x00\xa4") == b"\x67\x00"
    assert card.process_apdu(bytes.fromhex("00A4040C09A0000002471001")) == b"\x67\x00"
    assert card.process_apdu(bytes.fromhex("80A4040C07A0000002471001")) == b"\x6e\x00"
    assert card.process_apdu(bytes.fromhex("00CA000000")) == b"\x6d\x00"
    assert card.process_apdu(bytes.fromhex("00B0000004")) == b"\x69\x86"


def test_card_errors_carry_the_status_word(document: EmrtdDocument) -> None:
    card = EmrtdCard(document)
    with pytest.raises(CardError, match="6A82 .file or application not found") as error:
        expect_ok(PlainChannel(card.process_apdu).transmit(select_application(b"\xa0\x00")), "x")
    assert error.value.sw == 0x6A82
