"""``gatectl broker``: CA rotation keeps the old CA trusted; render refuses what it cannot do."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from broker.mosquitto_config import MosquittoLayout, render_mosquitto
from firmware_tools.cli import app


def _gatectl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _cas(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_rotation_trusts_the_old_and_the_new_ca_until_the_next_one(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    assert _gatectl("broker", "ca", "--out", str(pki), "--host", "broker.school.vn")[0] == 0
    first = _cas(pki / "ca.crt")
    assert len(first) == 1

    code, said = _gatectl(
        "broker", "ca", "--out", str(pki), "--host", "broker.school.vn", "--rotate"
    )
    assert code == 0 and "rotated" in said
    second = _cas(pki / "ca.crt")
    assert len(second) == 2 and second[1] == first[0]  # new first, the old one kept
    server = x509.load_pem_x509_certificate((pki / "server.crt").read_bytes())
    server.verify_directly_issued_by(second[0])
    # A TLS client given the bundle accepts the new server certificate.
    ssl.create_default_context(cafile=str(pki / "ca.crt")).load_cert_chain(
        pki / "server.crt", pki / "server.key"
    )

    assert _gatectl("broker", "ca", "--out", str(pki), "--host", "b", "--rotate")[0] == 0
    third = _cas(pki / "ca.crt")
    assert len(third) == 2 and third[1] == second[0] and first[0] not in third


def test_rotating_nothing_is_refused(tmp_path: Path) -> None:
    code, said = _gatectl("broker", "ca", "--out", str(tmp_path), "--host", "b", "--rotate")
    assert code == 1 and "nothing to rotate" in said
    assert not (tmp_path / "ca.key").exists()


def test_render_says_what_is_missing_before_asking_the_server(tmp_path: Path) -> None:
    common = ("--server", "http://127.0.0.1:9", "--token", "t")
    code, said = _gatectl("broker", "render", "--out", str(tmp_path / "b"), *common)
    assert code == 1 and "lacks ca.crt, server.crt, server.key" in said
    code, said = _gatectl(
        "broker", "render", "--out", str(tmp_path), "--server", "ftp://x", "--token", "t"
    )
    assert code == 2 and "--server" in said


def test_sync_needs_a_rendered_broker(tmp_path: Path) -> None:
    common = ("--server", "http://127.0.0.1:9", "--token", "t")
    code, said = _gatectl("broker", "sync", "--broker-dir", str(tmp_path), *common)
    assert code == 1 and "gatectl broker render" in said


def test_sync_without_the_servers_password_changes_nothing(tmp_path: Path) -> None:
    """After the reload, sync deletes cut-off gates' statuses with the server's broker account;
    not knowing its password is said before the server is asked or a file rewritten."""
    render_mosquitto(MosquittoLayout(tmp_path), [], {})  # given --service-password: no file
    acl = (tmp_path / "acl").read_text()
    result = CliRunner().invoke(
        app,
        ["broker", "sync", "--broker-dir", str(tmp_path)],
        env={
            "CAMPUSGATE_SERVER": "http://127.0.0.1:9",
            "CAMPUSGATE_TOKEN": "t",
            "GATECTL_BROKER_PASSWORD": None,
        },
    )
    assert result.exit_code == 1 and "--broker-password" in result.output, result.output
    assert (tmp_path / "acl").read_text() == acl
