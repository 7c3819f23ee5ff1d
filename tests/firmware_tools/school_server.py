"""A real school server for gatectl's tests: uvicorn in its own process on a free loopback
port, on a database the test prepared, with an admin's API token.

The server's MQTT settings point at a port nothing listens on, so gallery announcements fail
fast and are logged (the galleries are still published in the database), as on a server whose
broker is down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlmodel import Session

from broker.managed import free_port
from server.models import Role, User
from tests.server.api.conftest import bearer_token

ROOT = Path(__file__).resolve().parents[2]


def admin_token(db: Session, role: Role = Role.ADMIN) -> str:
    """A fresh API token of a new user with ``role``."""
    user = User(username=f"{role.value}-{time.monotonic_ns()}", full_name="Quản trị", role=role)
    db.add(user)
    db.commit()
    return bearer_token(db, user)


def server_env(db_url: str, data_dir: Path, models_dir: Path | None = None) -> dict[str, str]:
    """The environment of a server (or ``campusgate server …`` command) on ``db_url``."""
    env = dict(
        os.environ,
        CAMPUSGATE_SERVER__DATABASE_URL=db_url,
        CAMPUSGATE_SERVER__DATA_DIR=str(data_dir),
        CAMPUSGATE_SERVER__MQTT__PORT=str(free_port()),
        CAMPUSGATE_SERVER__FACES__THREADS="1",
    )
    if models_dir is not None:
        env["CAMPUSGATE_SERVER__FACES__MODELS_DIR"] = str(models_dir)
    return env


@contextmanager
def school_server(env: dict[str, str], log: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """Run the server's app under uvicorn, its output in ``log``; yields its base URL
    (``http://127.0.0.1:PORT``)."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "server.main:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    output = log.open("w")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {timeout_s:g} s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close()
