"""The embedded pure-Python broker (amqtt) behind the one-command default.

It lets ``make up`` run the whole system with nothing installed as root. It allows anonymous
clients and keeps its state in memory, so it binds to loopback only; a school's deployment uses
Mosquitto with the templates in ``broker/mosquitto/`` (TLS, per-device credentials, persistence).
It speaks MQTT 3.1.1 without shared subscriptions.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker was asked for something it must not do, or failed to start."""


def _check_loopback(host: str) -> None:
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise EmbeddedBrokerError(
            f"the embedded broker accepts anonymous clients, so it binds only to loopback, not "
            f"{host!r}; use Mosquitto with the templates in broker/mosquitto for a network"
        )


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener, anonymous access, no packet logging."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 0}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def serve(host: str, port: int, stop: asyncio.Event, started: threading.Event | None = None):
    """Run the broker until ``stop`` is set; set ``started`` once it accepts connections."""
    _check_loopback(host)
    broker = Broker(broker_config(host, port))
    await broker.start()
    log.info("embedded broker listening", extra={"host": host, "port": port})
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        await broker.shutdown()
        log.info("embedded broker stopped", extra={"host": host, "port": port})


class EmbeddedBroker:
    """The embedded broker on a background thread, for ``campusgate up`` and for tests.

    ``with EmbeddedBroker(port=0) as b:`` picks a free port and exposes it as ``b.port``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        _check_loopback(host)
        self.host = host
        self.port = port or _free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Start the broker and return once it accepts connections (or raise why it did not)."""
        started = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._stop = asyncio.Event()
            try:
                self._loop.run_until_complete(serve(self.host, self.port, self._stop, started))
            except BaseException as exc:  # reported to the starting thread below
                self._error = exc
                started.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not started.wait(timeout) or self._error is not None:
            raise EmbeddedBrokerError(
                f"embedded broker did not start on {self.host}:{self.port}: {self._error}"
            )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker and wait for its thread to end."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP listener could bind ``host:port`` right now."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
