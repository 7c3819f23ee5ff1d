"""A technician brings two gates online with ``gatectl``, as docs/install-gate.md tells them to.

Real parts only: the server (uvicorn, SQLite in a temporary folder), Mosquitto started from
``gatectl broker render`` (TLS, passwords and ACL from the server's registry), and two gates run
by ``campusgate edge`` from their bundles — gate A from a password bundle, gate B from a claim
bundle. Then: A cannot publish under B's topics; a claim token works once and an expired one not
at all; B provisioned again loses its old session and its "online" until it starts from the new
bundle; revoking A disconnects it from the running broker and keeps it out, deletes its retained
status so that ``gatectl gate status`` stops showing it online, and B never notices; B revoked
without the broker's directory shows as revoked until ``gatectl broker sync`` deletes its status.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from broker.codec import decode
from broker.managed import free_port, wait_for_port
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import Status
from broker.topics import device_topic, parse_topic
from firmware_tools.broker_cli import SERVICE_PASSWORD_FILE
from firmware_tools.cli import app as gatectl
from server.api.security import hash_password
from server.auth_models import DeviceClaimToken
from server.db import create_db_engine, writer
from server.migrations import upgrade
from server.models import Device, Role, School, Site, User, utc_now
from tests.campusgate.test_up import make_clip
from tests.firmware_tools.school_server import school_server, server_env
from tests.fixtures.mosquitto import mosquitto_binary

pytestmark = pytest.mark.mosquitto

SITE = "school-a"
TECHNICIAN, PASSWORD = "ky-thuat", "mật-khẩu-kỹ-thuật-viên"
CAMPUSGATE = Path(sys.executable).parent / "campusgate"
WAIT_S = 60.0


@dataclass
class Server:
    url: str
    token: str
    database_url: str


def _seed(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        upgrade(engine)
        with Session(engine) as db:
            school = School(name="Trường THPT Chu Văn An", timezone="Asia/Ho_Chi_Minh")
            db.add(school)
            db.flush()
            db.add(Site(code=SITE, name="Cơ sở chính", school_id=school.id))
            technician = User(
                username=TECHNICIAN,
                full_name="Kỹ thuật viên",
                role=Role.TECHNICIAN,
                password_hash=hash_password(PASSWORD),
            )
            db.add(technician)
            db.commit()
    finally:
        engine.dispose()


def _technician_token(url: str) -> str:
    """What a technician does once: sign in, and make an API token for gatectl."""
    with httpx.Client(base_url=url + "/api/v1") as web:
        login = web.post("/auth/login", json={"username": TECHNICIAN, "password": PASSWORD})
        assert login.status_code == 200, login.text
        made = web.post(
            "/auth/tokens",
            json={"name": "gatectl"},
            headers={"X-CSRF-Token": login.json()["csrf_token"]},
        )
        assert made.status_code == 201, made.text
        return made.json()["token"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    database_url = f"sqlite:///{data_dir / 'campusgate.db'}"
    _seed(database_url)
    with school_server(server_env(database_url, data_dir), tmp_path / "server.log") as url:
        yield Server(url, _technician_token(url), database_url)


def run_gatectl(server: Server, *args: str) -> str:
    """Run a gatectl command as the technician; its stdout (it must exit 0)."""
    result = CliRunner().invoke(
        gatectl, list(args), env={"CAMPUSGATE_SERVER": server.url, "CAMPUSGATE_TOKEN": server.token}
    )
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


class StatusWatch:
    """The server's view of the gates: their retained statuses, as the broker hands them out."""

    def __init__(self, port: int, password: str) -> None:
        self.latest: dict[str, Status] = {}
        self._changed = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="watch", protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(SERVER_USERNAME, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"cg/v1/{SITE}/+/status", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            if message.payload:
                status = decode(message.topic, message.payload).message
                self.latest[status.device] = status
            else:  # the retained status deleted
                self.latest.pop(parse_topic(message.topic).device, None)
            self._changed.notify_all()

    def wait_online(self, *devices: str) -> None:
        with self._changed:
            self._changed.wait_for(
                lambda: all(d in self.latest and self.latest[d].state == "online" for d in devices),
                WAIT_S,
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def gate_status(port: int, password: str, *gates: str, server: Server | None = None) -> dict:
    """``gatectl gate status --json`` on the broker's loopback listener with the server's
    account; with ``server``, it also asks the server which gates are revoked."""
    asks = {"CAMPUSGATE_SERVER": server.url, "CAMPUSGATE_TOKEN": server.token} if server else {}
    result = CliRunner().invoke(
        gatectl,
        ["gate", "status", *gates, "--broker", f"127.0.0.1:{port}", "--wait", "1", "--json"],
        env={"CAMPUSGATE_SERVER": None, "CAMPUSGATE_TOKEN": None}
        | asks
        | {"GATECTL_BROKER_PASSWORD": password},
    )
    assert result.exit_code in (0, 1), (result.output, result.exception)
    return json.loads(result.stdout)


def _states(report: dict) -> dict[str, str]:
    return {gate["device"]: gate["state"] for gate in report["gates"]}


def _connect(
    port: int, ca: Path, username: str, password: str, protocol: int
) -> tuple[mqtt.Client, mqtt.ReasonCode]:
    """A client with its network loop running, and the broker's CONNACK verdict (TLS)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=username, protocol=protocol)
    client.username_pw_set(username, password)
    client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    answers: list[mqtt.ReasonCode] = []
    done = threading.Event()
    client.on_connect = lambda _c, _u, _f, code, _p: (answers.append(code), done.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert done.wait(10), "no CONNACK"
    return client, answers[0]


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def _probe(port: int, ca: Path, username: str, password: str) -> mqtt.Client:
    """A connected MQTT 5 client (its PUBACKs carry the broker's verdict). SIGHUP returns before
    Mosquitto has re-read its files, so a credential gatectl just added may need a moment."""
    deadline = time.monotonic() + WAIT_S
    while True:
        client, verdict = _connect(port, ca, username, password, mqtt.MQTTv5)
        if not verdict.is_failure:
            client.acks = {}  # type: ignore[attr-defined]
            client.on_publish = lambda c, _u, mid, code, _p: c.acks.__setitem__(mid, code)
            return client
        _close(client)
        assert time.monotonic() < deadline, f"the broker keeps refusing {username}: {verdict}"
        time.sleep(0.1)


def _publish(client: mqtt.Client, topic: str) -> mqtt.ReasonCode:
    """Publish at QoS 1 and return the reason code of the broker's PUBACK."""
    info = client.publish(topic, b"{}", qos=1)
    info.wait_for_publish(10)
    deadline = time.monotonic() + 10
    while info.mid not in client.acks and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    return client.acks[info.mid]  # type: ignore[attr-defined]


def _wait_for(what: str, check, timeout_s: float = WAIT_S) -> None:
    """Poll ``check`` until true; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f} s"
        time.sleep(0.1)


def _wait_refused(what: str, log: Path, seen: int) -> str:
    """Wait until the gate's log, past its first ``seen`` characters, says the broker refused
    it; return that part of the log."""
    refused = "broker refused the connection"
    _wait_for(f"the broker to refuse {what}", lambda: refused in log.read_text()[seen:])
    return log.read_text()[seen:]


def _start_gate(bundle: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(CAMPUSGATE), "edge", "--config", str(bundle / "gate.toml")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.timeout(300)
def test_a_technician_brings_two_gates_online_and_revokes_one(
    server: Server, tmp_path: Path, default_pack
) -> None:
    pki, broker_dir, bundles = tmp_path / "pki", tmp_path / "broker", tmp_path / "bundles"
    tls_port, plain_port = free_port(), free_port()

    # The broker: a CA, then Mosquitto's files from the (still empty) registry.
    run_gatectl(server, "broker", "ca", "--out", str(pki), "--host", "127.0.0.1")
    run_gatectl(
        server,
        *("broker", "render", "--out", str(broker_dir), "--certs", str(pki)),
        *("--tls-port", str(tls_port), "--plain-port", str(plain_port), "--bind", "127.0.0.1"),
    )
    service_password = (broker_dir / SERVICE_PASSWORD_FILE).read_text().strip()
    assert (broker_dir / SERVICE_PASSWORD_FILE).stat().st_mode & 0o777 == 0o600
    mosquitto = subprocess.Popen(
        [mosquitto_binary(), "-c", str(broker_dir / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gates: list[subprocess.Popen] = []
    watch: StatusWatch | None = None
    try:
        wait_for_port(tls_port)
        wait_for_port(plain_port)
        _wait_for("Mosquitto's pid file", (broker_dir / "mosquitto.pid").exists)

        # Two gates: registered, then provisioned (A with its secret, B with a claim token).
        clip = make_clip(tmp_path / "camera.mp4", seconds=120, fps=5)
        bundle_options = ("--broker", f"127.0.0.1:{tls_port}", "--ca", str(pki))
        bundle_options += ("--camera", str(clip), "--broker-dir", str(broker_dir))
        run_gatectl(server, "device", "add", SITE, "gate-a", "--name", "Cổng chính")
        run_gatectl(server, "device", "add", SITE, "gate-b", "--direction", "out")
        run_gatectl(
            server,
            *("device", "provision", f"{SITE}.gate-a", "--out", str(bundles / "a")),
            *("--data-dir", str(tmp_path / "state-a"), *bundle_options),
        )
        run_gatectl(
            server,
            *("device", "provision", "gate-b", "--claim-token", "--ttl", "15m"),
            *("--out", str(bundles / "b"), "--data-dir", str(tmp_path / "state-b")),
            *bundle_options,
        )
        assert (bundles / "a" / "gate.toml").stat().st_mode & 0o777 == 0o600
        a_password = tomllib.loads((bundles / "a" / "gate.toml").read_text())["broker"]["password"]
        b_claim = tomllib.loads((bundles / "b" / "gate.toml").read_text())
        assert "password" not in b_claim["broker"] and b_claim["claim"]["token"].startswith("cgc_")
        shutil.copytree(bundles / "b", tmp_path / "b-copy")  # the same token, for a second try

        # The ACL from the registry: A may write only under its own topics.
        ca = pki / "ca.crt"
        probe = _probe(tls_port, ca, f"{SITE}.gate-a", a_password)
        try:
            assert not _publish(probe, device_topic("telemetry", SITE, "gate-a")).is_failure
            for channel in ("events", "status"):
                refused = _publish(probe, device_topic(channel, SITE, "gate-b"))
                assert str(refused) == "Not authorized"
        finally:
            _close(probe)

        # Both gates start from their bundles; B claims its credential first.
        env = {**os.environ, "CAMPUSGATE_MODELS": str(default_pack.root.parent)}
        logs = {name: tmp_path / f"gate-{name}.log" for name in ("a", "b")}
        gates = [_start_gate(bundles / name, logs[name], env) for name in ("a", "b")]
        watch = StatusWatch(plain_port, service_password)
        watch.wait_online("gate-a", "gate-b")
        online = {d: s.state for d, s in watch.latest.items()}
        assert online == {"gate-a": "online", "gate-b": "online"}, (
            online,
            logs["a"].read_text()[-2000:],
            logs["b"].read_text()[-2000:],
        )
        b_config = tomllib.loads((bundles / "b" / "gate.toml").read_text())
        assert "claim" not in b_config and b_config["broker"]["password"]
        assert (bundles / "b" / "gallery.pub").read_text().startswith("-----BEGIN PUBLIC KEY")

        # The claim token works once: a second gate with the same bundle is refused.
        before = (tmp_path / "b-copy" / "gate.toml").read_bytes()
        again = subprocess.run(
            [str(CAMPUSGATE), "edge", "--config", str(tmp_path / "b-copy" / "gate.toml")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 2, again.stderr
        assert "410" in again.stderr and "already used" in again.stderr
        assert (tmp_path / "b-copy" / "gate.toml").read_bytes() == before
        assert not (tmp_path / "b-copy" / "gallery.pub").exists()

        # An expired claim token is refused too, and changes nothing.
        run_gatectl(server, "device", "add", SITE, "gate-c")
        run_gatectl(
            server,
            *("device", "provision", "gate-c", "--claim-token", "--out", str(bundles / "c")),
            *bundle_options,
        )
        engine = create_db_engine(server.database_url)
        try:
            with Session(writer(engine)) as db:
                token = db.exec(
                    select(DeviceClaimToken).join(Device).where(Device.device_id == "gate-c")
                ).one()
                token.expires_at = utc_now()
                db.add(token)
                db.commit()
        finally:
            engine.dispose()
        before = (bundles / "c" / "gate.toml").read_bytes()
        expired = subprocess.run(
            [str(CAMPUSGATE), "edge", "--config", str(bundles / "c" / "gate.toml")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert expired.returncode == 2 and "expired" in expired.stderr, expired.stderr
        assert (bundles / "c" / "gate.toml").read_bytes() == before

        # B provisioned again (a new SD card, say): the reload ends its session on the old
        # secret, and gatectl deletes the "online" that session left; from the new bundle it is
        # back, and A never noticed.
        seen_a, seen_b = len(logs["a"].read_text()), len(logs["b"].read_text())
        renewed = run_gatectl(
            server,
            *("device", "provision", f"{SITE}.gate-b", "--out", str(bundles / "b2")),
            *("--data-dir", str(tmp_path / "state-b"), *bundle_options, "--json"),
        )
        assert json.loads(renewed)["broker"]["cleared_statuses"] == [f"{SITE}/gate-b"]
        _wait_refused("gate B's old secret", logs["b"], seen_b)
        assert "gate-b" not in watch.latest
        assert _states(gate_status(plain_port, service_password)) == {"gate-a": "online"}
        _stop(gates[1])
        gates[1] = _start_gate(bundles / "b2", logs["b"], env)
        watch.wait_online("gate-b")
        assert "disconnected" not in logs["a"].read_text()[seen_a:]
        online = {d: s.state for d, s in watch.latest.items()}

        # Revoking A disconnects it from the running broker and keeps it out; B stays on.
        assert _states(gate_status(plain_port, service_password)) == online
        seen_a, seen_b = len(logs["a"].read_text()), len(logs["b"].read_text())
        revoked = run_gatectl(
            server,
            *("device", "revoke", f"{SITE}.gate-a", "--broker-dir", str(broker_dir), "--json"),
        )
        assert json.loads(revoked)["broker"]["cleared_statuses"] == [f"{SITE}/gate-a"]
        after = _wait_refused("gate A's disconnection and reconnect", logs["a"], seen_a)
        assert after.index("disconnected") < after.index("broker refused the connection")
        assert "Not authorized" in after
        again, verdict = _connect(tls_port, ca, f"{SITE}.gate-a", a_password, mqtt.MQTTv311)
        _close(again)
        assert str(verdict) == "Not authorized"
        assert gates[1].poll() is None
        assert "disconnected" not in logs["b"].read_text()[seen_b:]
        assert watch.latest["gate-b"].state == "online"

        # The broker published no will for A, and gatectl deleted its retained "online": gate
        # status no longer shows it online (never seen; revoked when the server is asked).
        assert "gate-a" not in watch.latest
        assert _states(gate_status(plain_port, service_password)) == {"gate-b": "online"}
        asked = gate_status(plain_port, service_password, f"{SITE}/gate-a", server=server)
        assert _states(asked) == {"gate-a": "revoked"} and asked["missing"] == []
        unasked = gate_status(plain_port, service_password, f"{SITE}/gate-a")
        assert unasked["gates"] == [] and unasked["missing"] == [f"{SITE}/gate-a"]

        # B revoked away from the broker's host: the broker keeps it (and its "online") until
        # `broker sync` runs there, which cuts it off and deletes its status.
        run_gatectl(server, "device", "revoke", f"{SITE}.gate-b")
        stale = gate_status(plain_port, service_password, server=server)
        assert _states(stale) == {"gate-b": "revoked"}
        assert stale["gates"][0]["status"]["state"] == "online"
        synced = run_gatectl(server, "broker", "sync", "--broker-dir", str(broker_dir), "--json")
        assert json.loads(synced)["cleared_statuses"] == [f"{SITE}/gate-b"]
        assert gate_status(plain_port, service_password)["gates"] == []
    finally:
        for gate in gates:
            _stop(gate)
        if watch is not None:
            watch.close()
        mosquitto.terminate()
        mosquitto.wait(20)
