"""Provisioning bundles: what gatectl writes, the gate reads back exactly; secrets stay 0600."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from broker.pki import create_ca
from edge.config import load_config
from edge.config_writer import dumps
from firmware_tools.bundle import BundleExists, GateBundle

KEY_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"


def _bundle(**changes) -> GateBundle:
    fields = dict(
        site="school-a",
        device="gate-1",
        direction="out",
        broker_host="broker.school.vn",
        broker_port=8883,
        ca_pem=create_ca().certificate.public_bytes(Encoding.PEM),
        api_url="https://school.vn/api/v1",
        camera='rtsp://cam/"main"\\stream',
        data_dir=Path("/var/lib/cổng 1"),
    )
    return GateBundle(**(fields | changes))


def test_a_password_bundle_is_a_gate_config_with_its_files(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    files = _bundle().write_password_bundle(out, 'p"ass\\ZQX\n', KEY_PEM)
    assert [f.name for f in files] == ["bundle.json", "ca.crt", "gallery.pub", "gate.toml"]
    assert (out / "gate.toml").stat().st_mode & 0o777 == 0o600
    config = load_config(out / "gate.toml")
    assert (config.device.site, config.device.device, config.gate.direction) == (
        "school-a",
        "gate-1",
        "out",
    )
    assert config.broker.password.get_secret_value() == 'p"ass\\ZQX\n'
    assert config.camera.source == 'rtsp://cam/"main"\\stream'
    assert config.storage.data_dir == Path("/var/lib/cổng 1")
    assert config.broker.ca_file == out / "ca.crt"  # relative in the file, so the folder moves
    assert config.gallery.public_key == out / "gallery.pub"
    assert config.claim is None
    manifest = json.loads((out / "bundle.json").read_text())
    assert manifest["credential"] == "password" and "ZQX" not in json.dumps(manifest)

    with pytest.raises(BundleExists):
        _bundle().write_password_bundle(out, "other", KEY_PEM)
    assert load_config(out / "gate.toml").broker.password.get_secret_value().startswith('p"')


def test_a_claim_bundle_holds_the_token_and_no_secret(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    _bundle().write_password_bundle(out, "secret", KEY_PEM)
    _bundle(direction="line").write_claim_bundle(
        out, "cgc_token", "2026-12-02T08:00:00Z", force=True
    )
    config = load_config(out / "gate.toml")
    assert config.broker.password is None and not (out / "gallery.pub").exists()
    assert config.claim is not None and config.claim.token.get_secret_value() == "cgc_token"
    assert config.claim.server_url == "https://school.vn/api/v1"
    assert config.gate.direction == "in"  # a line gate's line is set at the gate
    assert json.loads((out / "bundle.json").read_text())["expires_at"] == "2026-12-02T08:00:00Z"


def test_the_writer_round_trips_what_a_gate_file_holds() -> None:
    config = {
        "gate": {"direction": "line", "crossing_line": [0.1, 0.5, 0.9, 0.5], "require_face": True},
        "reader": {"kind": "pn532", "port": "/dev/ttyUSB0", "options": {"retries": 3}},
        "broker": {"port": 8883, "username": None},
    }
    text = dumps(config)
    assert tomllib.loads(text) == {
        "gate": config["gate"],
        "reader": config["reader"],
        "broker": {"port": 8883},
    }
    with pytest.raises(ValueError, match="plain TOML key"):
        dumps({"broker": {"a key": 1}})
    with pytest.raises(ValueError, match="nan"):
        dumps({"gate": {"x": float("nan")}})
