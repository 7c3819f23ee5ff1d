"""``gatectl device``: wrong usage is exit 2 and a failure exit 1, both said before anything
changes on the server (which is not even reachable here). The commands' work against a real
server: test_provisioning.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.managed import free_port
from broker.mosquitto_config import MosquittoLayout, render_mosquitto
from firmware_tools.cli import app


@pytest.fixture
def nowhere() -> dict[str, str]:
    """A server address where nothing listens, and a token."""
    return {"CAMPUSGATE_SERVER": f"http://127.0.0.1:{free_port()}", "CAMPUSGATE_TOKEN": "cg_x"}


def _gatectl(env: dict[str, str | None], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())  # as said, not as wrapped


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("provision", "gate-1"), "--out"),
        (("provision", "gate-1", "--out", "b"), "--broker"),
        (("provision", "gate-1", "--out", "b", "--broker", "h"), "--ca"),
        (("provision", "gate-1", "--claim-token", "--ttl", "soon"), "--ttl"),
        (("add", "school-a", "gate-1", "--direction", "sideways"), "--direction"),
        (("provision", "gate-1", "--out", "b", "--broker", "h:99999", "--ca", "."), "1-65535"),
    ],
)
def test_wrong_usage_is_exit_2(
    nowhere: dict[str, str], tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    code, output = _gatectl(nowhere, "device", *args)
    assert code == 2 and said in output, output


def test_an_unreachable_server_is_exit_1(nowhere: dict[str, str]) -> None:
    code, output = _gatectl(nowhere, "device", "revoke", "gate-1")
    assert code == 1 and "cannot reach the server" in output


def test_an_unrendered_broker_dir_stops_before_the_server_is_asked(
    nowhere: dict[str, str], tmp_path: Path
) -> None:
    code, output = _gatectl(nowhere, "device", "revoke", "gate-1", "--broker-dir", str(tmp_path))
    assert code == 1 and "no rendered broker" in output


def test_a_broker_dir_without_the_servers_password_stops_before_the_server_is_asked(
    nowhere: dict[str, str], tmp_path: Path
) -> None:
    """Revoking deletes the gate's retained status with the server's broker account."""
    render_mosquitto(MosquittoLayout(tmp_path), [], {})  # given --service-password: no file
    code, output = _gatectl(
        nowhere | {"GATECTL_BROKER_PASSWORD": None},
        *("device", "revoke", "gate-1", "--broker-dir", str(tmp_path)),
    )
    assert code == 1 and "--broker-password" in output, output
    assert "cannot reach the server" not in output


def test_a_bundle_in_the_way_stops_before_the_server_is_asked(
    nowhere: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "gate.toml").write_text("[device]\n")
    code, output = _gatectl(
        nowhere,
        *("device", "provision", "gate-1", "--out", str(tmp_path)),
        *("--broker", "h", "--ca", str(tmp_path / "gate.toml")),
    )
    assert code == 1 and "--force" in output
