"""The ``campusgate`` command: start the system or one of its parts, and run benchmarks."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker.cli import app as broker_app
from broker.embedded import EmbeddedBroker, EmbeddedBrokerError, port_is_free
from campusgate import __version__
from campusgate.bench import app as bench_app
from campusgate.logs import setup_logging
from server.cli import app as server_app

app = typer.Typer(
    help="campusgate: face and chip-card attendance for schools (gates, broker, server).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(broker_app, name="broker")
app.add_typer(bench_app, name="bench")
app.add_typer(server_app, name="server")
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"campusgate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    log_level: Annotated[
        str, typer.Option(metavar="LEVEL", help="Log level: debug, info, warning or error.")
    ] = "info",
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Set up structured logging for whichever part runs."""
    setup_logging(log_level)


@app.command()
def edge(
    config: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, metavar="FILE", help="The gate's TOML.")
    ],
) -> None:
    """Run a gate: camera, recognition, outbox and MQTT link, until Ctrl-C."""
    from edge.agent import Gate
    from edge.config import ConfigError, load_config

    try:
        gate = Gate(load_config(config))
    except (ConfigError, OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        gate.run(stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def up(
    mqtt_port: Annotated[
        int,
        typer.Option(
            metavar="PORT", help="Embedded broker's port; 0 = 1883 if free, else any free port."
        ),
    ] = 0,
) -> None:
    """Start the system on embedded defaults on this machine, until Ctrl-C.

    Starts the embedded MQTT broker on loopback; the server and the gate join it as their
    parts land.
    """
    if mqtt_port == 0 and port_is_free("127.0.0.1", 1883):
        mqtt_port = 1883  # the usual port, unless a system Mosquitto already holds it
    try:
        broker = EmbeddedBroker("127.0.0.1", mqtt_port).start()
    except EmbeddedBrokerError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"campusgate {__version__} is up")
    console.print(f"  MQTT broker  mqtt://127.0.0.1:{broker.port}  (embedded, anonymous, loopback)")
    console.print("Ctrl-C stops everything.")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        console.print("stopped")
