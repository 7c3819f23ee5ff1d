"""Passive authentication (ICAO 9303-11 §5.1): are the data groups we read the ones the issuing
state signed?

Three independent checks, each reported on its own so a technician sees which one failed:

1. every data group read hashes to the value in the SOD's LDSSecurityObject;
2. the SOD's CMS signature verifies with the document signer (DS) certificate it carries;
3. when a CSCA list is configured, the DS certificate was issued by one of those CSCAs and both
   are within their validity period. Without a list this check is "not checked", and the
   verdict does not pass: anyone can sign a SOD with a certificate they made themselves.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel, computed_field

from edge.cards.cccd.errors import CscaError, SodError
from edge.cards.cccd.sod import Sod, verify_signature

_PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


class DataGroupCheck(BaseModel):
    """Hash check of one data group read from the chip."""

    number: int
    status: Literal["ok", "hash mismatch", "not in SOD"]


class PassiveAuthResult(BaseModel):
    """The verdict of passive authentication, with each check's outcome."""

    hash_algorithm: str
    data_groups: list[DataGroupCheck]
    signature_ok: bool
    signature_error: str | None = None
    chain: Literal["ok", "failed", "not checked"]
    chain_error: str | None = None
    signer: str | None = None
    """The document signer certificate's subject (RFC 4514)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """True only when every data group matches, the signature holds and the DS certificate
        chains to a configured CSCA."""
        return (
            all(check.status == "ok" for check in self.data_groups)
            and self.signature_ok
            and self.chain == "ok"
        )


def load_csca_certificates(paths: Iterable[Path]) -> list[x509.Certificate]:
    """Read CSCA certificates from PEM files (one or more certificates each) or DER files."""
    certificates: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CscaError(f"{path}: {exc.strerror}") from None
        try:
            if _PEM_MARKER in data:
                certificates.extend(x509.load_pem_x509_certificates(data))
            else:
                certificates.append(x509.load_der_x509_certificate(data))
        except ValueError:
            raise CscaError(f"{path}: not a PEM or DER X.509 certificate") from None
    return certificates


def _within_validity(certificate: x509.Certificate, now: datetime, what: str) -> str | None:
    if now < certificate.not_valid_before_utc:
        return f"{what} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
    if now > certificate.not_valid_after_utc:
        return f"{what} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
    return None


def check_chain(
    signer: x509.Certificate, csca: Sequence[x509.Certificate], now: datetime
) -> str | None:
    """None when ``signer`` was issued by one of ``csca`` and both are valid at ``now``; else
    the reason it fails."""
    issuers = [ca for ca in csca if ca.subject == signer.issuer]
    if not issuers:
        return f"no configured CSCA is named {signer.issuer.rfc4514_string()!r}"
    for ca in issuers:
        try:
            signer.verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return _within_validity(ca, now, "the CSCA certificate") or _within_validity(
            signer, now, "the document signer certificate"
        )
    return "the document signer certificate's signature does not verify with any matching CSCA"


def verify(
    sod: Sod,
    data_groups: Mapping[int, bytes],
    csca: Sequence[x509.Certificate] = (),
    now: datetime | None = None,
) -> PassiveAuthResult:
    """Check ``data_groups`` (number → file bytes as read) against ``sod``, its signature, and
    — if ``csca`` is not empty — the DS certificate's chain."""
    checks = []
    for number, content in sorted(data_groups.items()):
        expected = sod.dg_hashes.get(number)
        if expected is None:
            status: Literal["ok", "hash mismatch", "not in SOD"] = "not in SOD"
        elif hmac.compare_digest(hashlib.new(sod.hash_algorithm, content).digest(), expected):
            status = "ok"
        else:
            status = "hash mismatch"
        checks.append(DataGroupCheck(number=number, status=status))
    try:
        signer: x509.Certificate | None = verify_signature(sod)
        signature_error = None
    except SodError as exc:
        signer, signature_error = None, str(exc)
    chain: Literal["ok", "failed", "not checked"]
    if not csca:
        chain, chain_error = "not checked", "no CSCA list configured"
    elif signer is None:
        chain, chain_error = "failed", "no verified document signer certificate to check"
    else:
        chain_error = check_chain(signer, csca, now or datetime.now(UTC))
        chain = "failed" if chain_error else "ok"
    return PassiveAuthResult(
        hash_algorithm=sod.hash_algorithm,
        data_groups=checks,
        signature_ok=signer is not None,
        signature_error=signature_error,
        chain=chain,
        chain_error=chain_error,
        signer=signer.subject.rfc4514_string() if signer is not None else None,
    )
