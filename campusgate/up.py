"""``campusgate up``: the whole system on one machine, on embedded defaults.

The embedded broker runs in this process; the server (SQLite, the demo school) and one demo gate
run as child processes of the same ``campusgate`` command, so each keeps its own logs, threads
and signal handling, and a gate that cannot open its camera does not take the server with it.
Everything lives in one data directory, and a second ``up`` reuses it: the demo school is loaded
once, the demo logins and the gate's secret are made once and kept.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from broker.passwords import hash_password as broker_password_hash

#: The demo gate ``up`` runs: the main entrance of the demo school's site.
DEMO_SITE, DEMO_GATE = "demo", "gate-1"
#: Demo sign-ins, printed at start: the school's admin and the first homeroom teacher.
DEMO_USERS = ("admin", "gv01")
#: The server's broker password, when ``up`` runs Mosquitto (kept with the demo passwords).
MQTT_SERVER = "mqtt-server"


@dataclass(frozen=True)
class UpPaths:
    """Where ``up`` keeps the server's and the gate's state under its data directory."""

    root: Path

    @property
    def server(self) -> Path:
        return self.root / "server"

    @property
    def gate(self) -> Path:
        return self.root / DEMO_GATE

    @property
    def secrets(self) -> Path:
        return self.root / "demo-secrets.env"

    @property
    def gallery_key(self) -> Path:
        return self.server / "gallery.pub"


@dataclass
class RunningBroker:
    """The broker ``up`` started: where the server and the gate reach it, and how to stop it."""

    kind: str
    server_port: int
    gate_port: int
    stop: Callable[[], None]
    gate_ca: Path | None = None
    """The CA the gate checks the broker's TLS certificate with; None: plain TCP on loopback."""
    server_password: str | None = None


def start_embedded(port: int) -> RunningBroker:
    """The embedded broker on loopback (anonymous, MQTT 3.1.1, in this process)."""
    from broker.embedded import EmbeddedBroker

    broker = EmbeddedBroker("127.0.0.1", port).start()
    return RunningBroker("embedded", broker.port, broker.port, broker.stop)


def start_mosquitto(paths: UpPaths, passwords: dict[str, str], port: int) -> RunningBroker:
    """Mosquitto from the project's templates, as a school runs it: the gate on the TLS
    listener with its own password and ACL, the server on the loopback one. The CA is made once
    and kept in the data directory, so the gate's trust survives a restart of ``up``."""
    from broker.managed import MosquittoInstance, free_port
    from broker.mosquitto_config import (
        SERVER_USERNAME,
        DeviceAccount,
        MosquittoLayout,
        render_mosquitto,
    )
    from broker.pki import create_ca, issue_server_cert

    layout = MosquittoLayout(
        data_dir=paths.root / "mosquitto",
        plain_port=port or free_port(),
        tls_port=free_port(),
        tls_bind="127.0.0.1",
    )
    if not layout.cafile.is_file():
        layout.certs_dir.mkdir(parents=True, exist_ok=True)
        ca = create_ca("campusgate up CA")
        ca.write(layout.cafile, layout.certs_dir / "ca.key")
        issue_server_cert(ca, ["localhost", "127.0.0.1"]).write(layout.certfile, layout.keyfile)
    gate = DeviceAccount(DEMO_SITE, DEMO_GATE)
    accounts = {SERVER_USERNAME: passwords[MQTT_SERVER], gate.username: passwords[DEMO_GATE]}
    hashes = {user: broker_password_hash(password) for user, password in accounts.items()}
    render_mosquitto(layout, [gate], hashes)
    instance = MosquittoInstance(layout, accounts, [gate])
    instance.start()
    return RunningBroker(
        "mosquitto",
        layout.plain_port,
        layout.tls_port,
        instance.stop,
        gate_ca=layout.cafile,
        server_password=passwords[MQTT_SERVER],
    )


def server_environment(paths: UpPaths, broker: RunningBroker, http_port: int) -> dict[str, str]:
    """Settings for the server process: SQLite in the data directory, and the broker. The
    embedded one speaks MQTT 3.1.1 without shared subscriptions, so it gets one ingest worker;
    Mosquitto gets two on a shared subscription, as a school's server runs."""
    env = {
        "CAMPUSGATE_SERVER__DATA_DIR": str(paths.server),
        "CAMPUSGATE_SERVER__MQTT__HOST": "127.0.0.1",
        "CAMPUSGATE_SERVER__MQTT__PORT": str(broker.server_port),
        "CAMPUSGATE_SERVER__HTTP__HOST": "127.0.0.1",
        "CAMPUSGATE_SERVER__HTTP__PORT": str(http_port),
    }
    if broker.server_password is None:
        return env | {
            "CAMPUSGATE_SERVER__MQTT__PROTOCOL": "3.1.1",
            "CAMPUSGATE_SERVER__MQTT__SHARE_GROUP": "",
            "CAMPUSGATE_SERVER__INGEST__WORKERS": "1",
        }
    return env | {
        "CAMPUSGATE_SERVER__MQTT__PASSWORD": broker.server_password,
        "CAMPUSGATE_SERVER__INGEST__WORKERS": "2",
    }


def _kept_secrets(path: Path) -> dict[str, str]:
    """The demo passwords made by an earlier ``up`` (``NAME=value`` lines); those missing (all,
    the first time) are made now and added."""
    kept: dict[str, str] = {}
    if path.is_file():
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        kept = dict(pairs)
    names = (*DEMO_USERS, DEMO_GATE, MQTT_SERVER)
    if all(name in kept for name in names):
        return kept
    kept |= {name: secrets.token_urlsafe(9) for name in names if name not in kept}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{name}={value}\n" for name, value in kept.items()))
    return kept


def prepare_demo(paths: UpPaths) -> dict[str, str]:
    """Migrate the database, load the demo school if it is not there yet, and give the demo
    users and the demo gate their passwords. Returns the passwords by user / gate name."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sqlmodel import select

    from server.api.security import hash_password
    from server.auth_models import DeviceSecret
    from server.core.config import ServerSettings
    from server.db import create_db_engine, session_scope
    from server.demo import DemoError, load_demo
    from server.migrations import upgrade
    from server.models import Device, Site, User

    settings = ServerSettings(data_dir=paths.server)
    engine = create_db_engine(settings.database_url)
    try:
        upgrade(engine)
        # Loaded by an earlier `up` (DemoError): keep what the user did with it.
        with contextlib.suppress(DemoError):
            load_demo(engine, datetime.now(ZoneInfo(settings.timezone)).date(), settings.timezone)
        passwords = _kept_secrets(paths.secrets)
        with session_scope(engine, write=True) as db:
            for user in db.exec(select(User).where(User.username.in_(DEMO_USERS))):
                user.password_hash = hash_password(passwords[user.username])
                db.add(user)
            gate = db.exec(
                select(Device)
                .join(Site)
                .where(Site.code == DEMO_SITE, Device.device_id == DEMO_GATE)
            ).one()
            secret = db.get(DeviceSecret, gate.id) or DeviceSecret(device_id=gate.id)
            secret.secret_hash = broker_password_hash(passwords[DEMO_GATE])
            db.add(secret)
    finally:
        engine.dispose()
    return passwords


def gate_config(paths: UpPaths, broker: RunningBroker, camera: str, password: str) -> Path:
    """The demo gate's TOML: the broker on loopback (over TLS when it is Mosquitto), the
    server's gallery key."""
    paths.gate.mkdir(parents=True, exist_ok=True)
    path = paths.gate / "gate.toml"
    tls = f"ca_file = {_toml_string(str(broker.gate_ca))}\n" if broker.gate_ca else ""
    path.write_text(
        f'[device]\nsite = "{DEMO_SITE}"\ndevice = "{DEMO_GATE}"\n\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker.gate_port}\npassword = "{password}"\n'
        f"{tls}\n"
        f"[camera]\nsource = {_toml_string(camera)}\n\n"
        f"[storage]\ndata_dir = {_toml_string(str(paths.gate))}\n\n"
        f"[gallery]\npublic_key = {_toml_string(str(paths.gallery_key))}\n"
    )
    path.chmod(0o600)
    return path


def _toml_string(value: str) -> str:
    """A TOML basic string (paths and camera URLs may hold quotes or backslashes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def campusgate_command(*args: str) -> list[str]:
    """This same ``campusgate`` command, as a child process."""
    return [sys.executable, "-m", "campusgate", *args]


def start_child(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A child process whose output goes to ``log`` (appended)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
        )


def wait_until_ready(
    server: subprocess.Popen, http_port: int, gallery_key: Path, timeout_s: float = 120.0
) -> None:
    """Block until the server answers /healthz and has written its gallery key (the gate
    needs it to start); RuntimeError if the server exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{http_port}/healthz"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200 and gallery_key.is_file():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {timeout_s:.0f} s")


def stop_child(child: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within ``timeout_s``."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
