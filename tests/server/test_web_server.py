"""Several web processes on one port (``http.workers``): they answer, log in campusgate's format,
and stop with the supervisor."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx

from broker.managed import free_port
from server.web_server import listening_socket


def test_the_shared_socket_says_it_is_tcp() -> None:
    """asyncio turns Nagle's algorithm off only for sockets that say so (uvicorn#3149)."""
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_two_web_processes_answer_on_one_port_and_stop_together(tmp_path) -> None:
    port = free_port()
    env = {
        "CAMPUSGATE_SERVER__DATABASE_URL": f"sqlite:///{tmp_path / 'campusgate.db'}",
        "CAMPUSGATE_SERVER__DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    script = f"from server.web_server import serve; serve('127.0.0.1', {port}, 2)"
    server = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the web processes never answered"
                    time.sleep(0.2)
            answers = [http.get("/healthz").status_code for _ in range(30)]  # one connection
        assert answers == [200] * 30
        children = subprocess.run(
            ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(children) >= 2
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=60)
    assert server.returncode == 0
    assert " info uvicorn.error " in log  # campusgate's key=value lines, from the children too
    deadline = time.monotonic() + 15  # multiprocessing's resource tracker leaves on its own
    while alive := [pid for pid in children if subprocess.run(["kill", "-0", pid]).returncode == 0]:
        assert time.monotonic() < deadline, f"{alive} outlived the supervisor"
        time.sleep(0.2)
