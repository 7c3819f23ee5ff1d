"""Changing a running Mosquitto's accounts: new password file and ACL, then SIGHUP. A gate whose
account went away is disconnected at once; the others, and the service accounts, stay."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from broker.mosquitto_config import (
    SERVER_USERNAME,
    DeviceAccount,
    MosquittoLayout,
    update_credentials,
)
from broker.mosquitto_reload import ReloadError, reload_mosquitto
from broker.passwords import hash_password, read_password_file
from tests.fixtures.mosquitto import MosquittoInstance, connect

pytestmark = pytest.mark.mosquitto

GATE_1, GATE_2 = DeviceAccount("school-a", "gate-1"), DeviceAccount("school-a", "gate-2")


def _watch_disconnect(client) -> threading.Event:
    gone = threading.Event()
    client.on_disconnect = lambda *_: gone.set()
    return gone


def test_a_removed_gate_is_disconnected_and_the_others_stay(mosquitto: MosquittoInstance) -> None:
    gate_1, gate_2 = mosquitto.client(GATE_1.username), mosquitto.client(GATE_2.username)
    server = mosquitto.client(SERVER_USERNAME, tls=False, client_id="ingest")
    for client, tls in ((gate_1, True), (gate_2, True), (server, False)):
        assert connect(mosquitto, client, tls=tls) == 0
    dropped_1, dropped_2, dropped_server = map(_watch_disconnect, (gate_1, gate_2, server))

    update_credentials(
        mosquitto.layout,
        [GATE_2],
        {GATE_2.username: hash_password(mosquitto.passwords[GATE_2.username])},
    )
    assert reload_mosquitto(mosquitto.layout.pid_file) == mosquitto.process.pid

    assert dropped_1.wait(10), "the removed gate is still connected"
    again = mosquitto.client(GATE_1.username, client_id="again")
    assert str(connect(mosquitto, again)) == "Not authorized"
    # The reload is done once the refusal came: the others were checked by then.
    assert not dropped_2.is_set() and not dropped_server.is_set()
    acked = gate_2.publish("cg/v1/school-a/gate-2/telemetry", b"{}", qos=1)
    acked.wait_for_publish(10)  # a PUBACK on the same connection: it was never dropped
    assert acked.is_published() and not dropped_2.is_set()
    kept = read_password_file(mosquitto.layout.password_file)
    assert set(kept) == {SERVER_USERNAME, GATE_2.username}
    assert "gate-1" not in mosquitto.layout.acl_file.read_text()


def test_reload_refuses_what_is_not_a_running_mosquitto(tmp_path: Path) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    with pytest.raises(ReloadError, match="no pid file"):
        reload_mosquitto(pid_file)
    pid_file.write_text("not a pid\n")
    with pytest.raises(ReloadError, match="does not hold a process id"):
        reload_mosquitto(pid_file)
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but pytest: SIGHUP would end it
    with pytest.raises(ReloadError, match="not mosquitto"):
        reload_mosquitto(pid_file)


def test_update_credentials_needs_a_rendered_broker(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        update_credentials(MosquittoLayout(data_dir=tmp_path), [GATE_1], {})
