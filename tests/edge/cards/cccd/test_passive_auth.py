"""EF.SOD parsing and passive authentication: signature, data-group hashes, CSCA chain, and the
CSCA files a technician configures."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edge.cards.cccd.errors import CscaError, SodError
from edge.cards.cccd.passive_auth import load_csca_certificates, verify
from edge.cards.cccd.sod import parse_sod
from firmware_tools.emulators.emrtd_data import EmrtdDocument, build_document, make_pki

SOD, DG1, DG2, DG13 = 0x011D, 0x0101, 0x0102, 0x010D


@pytest.fixture(scope="module")
def document() -> EmrtdDocument:
    return build_document(portrait_size=(48, 64))


def groups(document: EmrtdDocument) -> dict[int, bytes]:
    return {1: document.files[DG1], 2: document.files[DG2], 13: document.files[DG13]}


def test_sod_parts(document: EmrtdDocument) -> None:
    sod = parse_sod(document.files[SOD])
    assert sod.hash_algorithm == sod.digest_algorithm == "sha256"
    assert sorted(sod.dg_hashes) == [1, 2, 3, 13]
    assert sod.dg_hashes[13] == hashlib.sha256(document.files[DG13]).digest()
    assert [c.subject for c in sod.certificates] == [document.pki.ds.subject]


def test_everything_right_passes(document: EmrtdDocument) -> None:
    verdict = verify(parse_sod(document.files[SOD]), groups(document), [document.pki.csca])
    assert verdict.passed and verdict.chain_error is None and verdict.signature_error is None


def test_a_data_group_the_sod_does_not_cover_is_reported(document: EmrtdDocument) -> None:
    verdict = verify(parse_sod(document.files[SOD]), {14: b"\x6e\x00"}, [document.pki.csca])
    assert [(c.number, c.status) for c in verdict.data_groups] == [(14, "not in SOD")]
    assert not verdict.passed


def test_an_altered_signature_fails(document: EmrtdDocument) -> None:
    sod = parse_sod(document.files[SOD])
    forged = dataclasses.replace(sod, signature=sod.signature[:-1] + bytes([sod.signature[-1] ^ 1]))
    verdict = verify(forged, groups(document), [document.pki.csca])
    assert not verdict.signature_ok and verdict.chain == "failed"
    assert "does not verify" in (verdict.signature_error or "")


def test_a_rewritten_hash_list_breaks_the_signed_digest(document: EmrtdDocument) -> None:
    original = hashlib.sha256(document.files[DG13]).digest()
    fake_hash = hashlib.sha256(b"forged DG13").digest()
    altered = document.files[SOD].replace(original, fake_hash)
    verdict = verify(parse_sod(altered), groups(document), [document.pki.csca])
    assert "message digest does not match" in (verdict.signature_error or "")
    assert {c.number: c.status for c in verdict.data_groups}[13] == "hash mismatch"


def test_certificates_outside_their_validity_fail_the_chain(document: EmrtdDocument) -> None:
    sod = parse_sod(document.files[SOD])
    later = datetime.now(UTC) + timedelta(days=4000)
    verdict = verify(sod, groups(document), [document.pki.csca], now=later)
    assert verdict.chain == "failed" and "expired on" in (verdict.chain_error or "")
    earlier = datetime.now(UTC) - timedelta(days=30)
    verdict = verify(sod, groups(document), [document.pki.csca], now=earlier)
    assert "is not valid before" in (verdict.chain_error or "")


def test_malformed_sods_are_sod_errors(document: EmrtdDocument) -> None:
    with pytest.raises(SodError, match="EF.SOD is malformed: expected tag 77, found 61"):
        parse_sod(document.files[DG1])
    not_signed_data = document.files[SOD].replace(
        bytes.fromhex("06092A864886F70D010702"), bytes.fromhex("06092A864886F70D010701")
    )
    with pytest.raises(SodError, match="does not hold a CMS SignedData"):
        parse_sod(not_signed_data)


def test_csca_files_load_from_pem_bundles_and_der(tmp_path: Path) -> None:
    first, second = make_pki(name="CSCA A"), make_pki(name="CSCA B")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(first.csca_pem() + second.csca_pem())
    der = tmp_path / "c.der"
    der.write_bytes(first.csca.public_bytes(serialization.Encoding.DER))
    loaded = load_csca_certificates([bundle, der])
    assert [c.subject for c in loaded] == [
        first.csca.subject,
        second.csca.subject,
        first.csca.subject,
    ]


def test_unreadable_csca_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(CscaError, match="junk.pem: not a PEM or DER X.509 certificate"):
        load_csca_certificates([junk])
    with pytest.raises(CscaError, match="missing.pem: No such file"):
        load_csca_certificates([tmp_path / "missing.pem"])
