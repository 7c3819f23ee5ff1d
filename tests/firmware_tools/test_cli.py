"""``gatectl broker ca`` makes a CA and a server certificate that TLS clients accept."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509

GATECTL = Path(sys.executable).parent / "gatectl"


def test_broker_ca_writes_a_verifiable_chain_and_refuses_to_overwrite(tmp_path) -> None:
    out = tmp_path / "pki"
    args = [
        str(GATECTL),
        "broker",
        "ca",
        "--out",
        str(out),
        "--host",
        "broker.school.vn",
        "--host",
        "10.0.0.5",
    ]
    assert subprocess.run(args, capture_output=True, timeout=60).returncode == 0
    assert {p.name for p in out.iterdir()} == {"ca.crt", "ca.key", "server.crt", "server.key"}
    assert (out / "ca.key").stat().st_mode & 0o777 == 0o600

    cert = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.school.vn"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    context = ssl.create_default_context(cafile=str(out / "ca.crt"))
    context.load_cert_chain(out / "server.crt", out / "server.key")  # key matches certificate

    before = (out / "ca.crt").read_bytes()
    again = subprocess.run(args, capture_output=True, timeout=60)
    assert again.returncode == 1 and b"--force" in again.stderr
    assert (out / "ca.crt").read_bytes() == before
    assert subprocess.run([*args, "--force"], capture_output=True, timeout=60).returncode == 0
    assert (out / "ca.crt").read_bytes() != before
