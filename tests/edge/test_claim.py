"""A gate's claim at start-up: the credential lands in its own file; anything else leaves the
bundle as it was. (The whole path against the real server: tests/firmware_tools/
test_provisioning.py.)"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.managed import free_port
from edge.claim import ClaimError, claim_credential, needs_claim
from edge.config import load_config
from edge.config_writer import write_config

KEY_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"


class Answers:
    """A stand-in server's answers to POST /devices/claim, one per request, and what it got."""

    def __init__(self) -> None:
        self.queue: list[tuple[int, dict]] = []
        self.received: list[dict] = []


@pytest.fixture
def server() -> Iterator[tuple[str, Answers]]:
    answers = Answers()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            answers.received.append({"path": self.path, **json.loads(self.rfile.read(length))})
            code, body = answers.queue.pop(0)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/v1", answers
    httpd.shutdown()


def _bundle(tmp_path: Path, server_url: str) -> Path:
    path = tmp_path / "gate.toml"
    write_config(
        path,
        {
            "device": {"site": "school-a", "device": "gate-1"},
            "broker": {"host": "127.0.0.1", "port": 8883},
            "camera": {"source": "/dev/video0"},
            "claim": {"server_url": server_url, "token": "cgc_abc"},
        },
    )
    return path


def _credential(device: str = "gate-1") -> dict:
    return {
        "site": "school-a",
        "device": device,
        "username": f"school-a.{device}",
        "password": "the-secret",
        "gallery_public_key": KEY_PEM,
    }


def test_a_claimed_credential_replaces_the_token_in_the_gate_s_file(
    tmp_path: Path, server: tuple[str, Answers]
) -> None:
    url, answers = server
    path = _bundle(tmp_path, url)
    answers.queue = [(503, {"detail": "starting"}), (200, _credential())]
    config = load_config(path)
    assert needs_claim(config)

    waits: list[float] = []
    claimed = claim_credential(config, path, sleep=waits.append)
    assert waits == [1.0]  # the 503 was retried after a pause
    assert answers.received[-1] == {"path": "/api/v1/devices/claim", "token": "cgc_abc"}
    assert claimed.broker.password.get_secret_value() == "the-secret"
    assert claimed.claim is None and not needs_claim(load_config(path))
    assert claimed.camera.source == "/dev/video0"  # the rest of the file is kept
    assert (tmp_path / "gallery.pub").read_text() == KEY_PEM
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_refusal_is_final_and_writes_nothing(tmp_path: Path, server: tuple[str, Answers]) -> None:
    url, answers = server
    path = _bundle(tmp_path, url)
    before = path.read_bytes()
    answers.queue = [(410, {"detail": "claim token already used / mã nhận thiết bị đã được dùng"})]
    with pytest.raises(ClaimError, match=r"\(410\): claim token already used"):
        claim_credential(load_config(path), path, sleep=pytest.fail)
    assert path.read_bytes() == before and not (tmp_path / "gallery.pub").exists()


def test_a_credential_for_another_gate_is_not_written(
    tmp_path: Path, server: tuple[str, Answers]
) -> None:
    url, answers = server
    path = _bundle(tmp_path, url)
    before = path.read_bytes()
    answers.queue = [(200, _credential("gate-2"))]
    with pytest.raises(ClaimError, match="issued for school-a/gate-2"):
        claim_credential(load_config(path), path)
    assert path.read_bytes() == before


def test_an_unreachable_server_is_retried_then_reported(tmp_path: Path) -> None:
    path = _bundle(tmp_path, f"http://127.0.0.1:{free_port()}/api/v1")
    waits: list[float] = []
    with pytest.raises(ClaimError, match="cannot reach"):
        claim_credential(load_config(path), path, retry_for_s=7.0, sleep=waits.append)
    assert waits == [1.0, 2.0, 4.0]  # doubling, up to the time given
    assert "cgc_abc" in path.read_text()
