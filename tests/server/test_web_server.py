"""The web server of ``campusgate server run``: several processes on one port (``http.workers``)
that answer, log in campusgate's format and stop with the supervisor; and HTTPS with the
deployment's own certificate (``http.tls_certfile``/``tls_keyfile``), in one process or several."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from broker.managed import free_port
from broker.pki import create_ca, issue_server_cert
from server.db import create_db_engine
from server.migrations import upgrade
from server.models import Role, User
from server.web_server import listening_socket
from tests.server.api.conftest import FAST_HASHER, PASSWORD


@dataclass
class Served:
    process: subprocess.Popen[str]
    log: str = ""
    """What the server wrote to stderr, once it has stopped."""


@contextmanager
def web_server(tmp_path: Path, settings: dict[str, str], client: httpx.Client) -> Iterator[Served]:
    """``serve`` of the settings in ``settings`` (``HTTP__…`` names), in a process of its own
    on a fresh SQLite database; returns once ``client`` gets an answer from ``/healthz``. On the
    way out the server is sent SIGTERM and must stop by itself."""
    env = {
        "CAMPUSGATE_SERVER__DATABASE_URL": f"sqlite:///{tmp_path / 'campusgate.db'}",
        "CAMPUSGATE_SERVER__DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    } | {f"CAMPUSGATE_SERVER__{name}": value for name, value in settings.items()}
    server = subprocess.Popen(
        [sys.executable, "-m", "server.web_server"], env=env, stderr=subprocess.PIPE, text=True
    )
    served = Served(server)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                assert server.poll() is None, f"the server exited: {server.stderr.read()}"
                assert time.monotonic() < deadline, "the web server never answered"
                time.sleep(0.2)
        yield served
    finally:
        server.send_signal(signal.SIGTERM)
        _, served.log = server.communicate(timeout=60)


def test_the_shared_socket_says_it_is_tcp() -> None:
    """asyncio turns Nagle's algorithm off only for sockets that say so (uvicorn#3149)."""
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_two_web_processes_answer_on_one_port_and_stop_together(tmp_path: Path) -> None:
    port = free_port()
    settings = {"HTTP__PORT": str(port), "HTTP__WORKERS": "2"}
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as http,
        web_server(tmp_path, settings, http) as served,
    ):
        answers = [http.get("/healthz").status_code for _ in range(30)]  # one connection
        assert answers == [200] * 30
        children = subprocess.run(
            ["pgrep", "-P", str(served.process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 2
    assert served.process.returncode == 0
    assert " info uvicorn.error " in served.log  # key=value lines, from the children too
    deadline = time.monotonic() + 15  # multiprocessing's resource tracker leaves on its own
    while alive := [pid for pid in children if subprocess.run(["kill", "-0", pid]).returncode == 0]:
        assert time.monotonic() < deadline, f"{alive} outlived the supervisor"
        time.sleep(0.2)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_server_speaks_https_with_the_deployments_certificate(
    tmp_path: Path, workers: int
) -> None:
    """What ``gatectl broker ca`` makes for the broker serves the web too: a client that trusts
    the deployment's CA (as every gate's bundle does) signs in over HTTPS and gets a cookie that
    never travels in clear text; a client without that CA, or speaking plain HTTP, gets nothing."""
    ca = create_ca()
    ca.write(tmp_path / "ca.crt", tmp_path / "ca.key")
    issue_server_cert(ca, ["127.0.0.1"]).write(tmp_path / "server.crt", tmp_path / "server.key")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'campusgate.db'}")
    upgrade(engine)
    with Session(engine) as db:
        db.add(
            User(
                username="quantri",
                full_name="Quản trị viên",
                role=Role.ADMIN,
                password_hash=FAST_HASHER.hash(PASSWORD),
            )
        )
        db.commit()
    engine.dispose()
    port = free_port()
    settings = {
        "HTTP__PORT": str(port),
        "HTTP__WORKERS": str(workers),
        "HTTP__TLS_CERTFILE": str(tmp_path / "server.crt"),
        "HTTP__TLS_KEYFILE": str(tmp_path / "server.key"),
    }
    trusting = ssl.create_default_context(cafile=tmp_path / "ca.crt")
    base = f"https://127.0.0.1:{port}"
    with (
        httpx.Client(base_url=base, verify=trusting) as https,
        web_server(tmp_path, settings, https),
    ):
        signed_in = https.post(
            "/api/v1/auth/login", json={"username": "quantri", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        cookie = signed_in.headers["set-cookie"]
        assert "cg_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
        me = https.get("/api/v1/auth/me").json()
        assert (me["user"]["username"], me["via"]) == ("quantri", "cookie")

        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/healthz", verify=ssl.create_default_context())
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz")
