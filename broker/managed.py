"""A Mosquitto started from the project's templates in a directory of its own.

Tests and benchmarks both need a real broker with the production config (TLS, per-device
credentials, ACL, persistence) that depends on nothing on the machine: each instance gets a fresh
CA, server certificate and passwords, on free loopback ports. This module is the one place that
knows how to start, reach and stop such a broker.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from broker.mosquitto_config import (
    SERVER_USERNAME,
    DeviceAccount,
    MosquittoLayout,
    render_mosquitto,
)
from broker.passwords import hash_password, new_password
from broker.pki import create_ca, issue_server_cert

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


class MosquittoNotFound(RuntimeError):
    """The mosquitto binary is not installed; the message says how to install it."""


def mosquitto_binary() -> str:
    """Path of the mosquitto binary, or :class:`MosquittoNotFound` with the install command."""
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise MosquittoNotFound(
        "mosquitto is not installed: run `make test` (installs it) or "
        "`sudo apt-get install -y mosquitto`"
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``; TimeoutError if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class MosquittoInstance:
    """A running broker and the credentials it accepts."""

    layout: MosquittoLayout
    passwords: dict[str, str]
    devices: list[DeviceAccount]
    process: subprocess.Popen | None = None
    clients: list[mqtt.Client] = field(default_factory=list)

    def start(self) -> None:
        """Start mosquitto and return once both listeners accept connections."""
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.layout.conf_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.layout.plain_port)
            wait_for_port(self.layout.tls_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log()}") from None

    def stop(self) -> None:
        """Disconnect the clients made by :meth:`client`, then stop the broker."""
        for client in self.clients:
            client.disconnect()  # first, so that loop_stop need not wait out its select timeout
            client.loop_stop()
        self.clients.clear()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log(self) -> str:
        """The broker's log so far (empty if it wrote none)."""
        path = self.layout.log_file
        return path.read_text() if path.exists() else ""

    def client(
        self,
        username: str | None,
        password: str | None = None,
        *,
        tls: bool = True,
        client_id: str = "",
        will: tuple[str, bytes] | None = None,
    ) -> mqtt.Client:
        """An unconnected paho client (MQTT 3.1.1) set up for this broker; stopped by stop()."""
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or (username or "anonymous"),
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if username is not None:
            client.username_pw_set(username, password or self.passwords.get(username))
        if tls:
            client.tls_set(ca_certs=str(self.layout.cafile), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        self.clients.append(client)
        return client

    def port(self, tls: bool = True) -> int:
        """The TLS (gates') or the plain loopback (server's) listener's port."""
        return self.layout.tls_port if tls else self.layout.plain_port


def connect(
    instance: MosquittoInstance, client: mqtt.Client, tls: bool = True, timeout: float = 5.0
) -> mqtt.ReasonCode:
    """Connect and return the broker's CONNACK reason code (success or the refusal)."""
    done = threading.Event()
    result: list[mqtt.ReasonCode] = []

    def on_connect(_client, _userdata, _flags, reason_code, _properties) -> None:
        result.append(reason_code)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", instance.port(tls), keepalive=30)
    client.loop_start()
    if not done.wait(timeout):
        raise TimeoutError("no CONNACK from the broker")
    return result[0]


def start_mosquitto(tmp: Path, devices: list[DeviceAccount]) -> MosquittoInstance:
    """Render the project's config into ``tmp`` with a fresh CA and start Mosquitto.

    Every device gets its own random password, and so does the server's account
    (:data:`~broker.mosquitto_config.SERVER_USERNAME`); they are in ``instance.passwords``.
    """
    layout = MosquittoLayout(
        data_dir=tmp, plain_port=free_port(), tls_port=free_port(), tls_bind="127.0.0.1"
    )
    layout.certs_dir.mkdir(parents=True, exist_ok=True)
    ca = create_ca("campusgate test CA")
    ca.write(layout.cafile, layout.certs_dir / "ca.key")
    issue_server_cert(ca, ["localhost", "127.0.0.1"]).write(layout.certfile, layout.keyfile)
    passwords = {SERVER_USERNAME: new_password()}
    passwords.update({device.username: new_password() for device in devices})
    render_mosquitto(layout, devices, {user: hash_password(pw) for user, pw in passwords.items()})
    instance = MosquittoInstance(layout, passwords, devices)
    instance.start()
    return instance
