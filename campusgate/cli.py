"""The ``campusgate`` command: start the system or one of its parts, and run benchmarks."""

from __future__ import annotations

import signal
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from broker.cli import app as broker_app
from broker.embedded import EmbeddedBrokerError, port_is_free
from campusgate import __version__
from campusgate.bench import app as bench_app
from campusgate.logs import setup_logging
from server.cli import app as server_app

if TYPE_CHECKING:
    from campusgate.up import RunningBroker

app = typer.Typer(
    help="campusgate: face and chip-card attendance for schools (gates, broker, server).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(broker_app, name="broker")
app.add_typer(bench_app, name="bench")
app.add_typer(server_app, name="server")
console = Console(stderr=True)


class BrokerKind(StrEnum):
    EMBEDDED = "embedded"
    MOSQUITTO = "mosquitto"


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
    """Run a gate: camera, recognition, outbox and MQTT link, until Ctrl-C. A gate provisioned
    by claim first exchanges its one-time token for its credential (written into FILE)."""
    from edge.agent import Gate
    from edge.claim import ClaimError, claim_credential, needs_claim
    from edge.config import ConfigError, load_config

    try:
        loaded = load_config(config)
        if needs_claim(loaded):
            loaded = claim_credential(loaded, config)
        gate = Gate(loaded)
    except (ConfigError, ClaimError, OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        gate.run(stop)
    except KeyboardInterrupt:
        stop.set()
    except OSError as exc:  # the camera cannot be opened: say so, not a traceback
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def up(
    mqtt_port: Annotated[
        int,
        typer.Option(
            metavar="PORT",
            help="The broker's port on loopback (with Mosquitto: the server's listener; gates "
            "use TLS on another); 0 = 1883 if free, else any free port.",
        ),
    ] = 0,
    http_port: Annotated[
        int, typer.Option(metavar="PORT", help="The server's web port (dashboard and API).")
    ] = 8000,
    camera: Annotated[
        str,
        typer.Option(
            envvar="CAMERA",
            metavar="SOURCE",
            help="The demo gate's camera: device index, /dev/videoN, video file or RTSP URL.",
        ),
    ] = "0",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR", help="Where the system keeps its state (default: ~/.local/share/…/up)."
        ),
    ] = None,
    broker_kind: Annotated[
        BrokerKind,
        typer.Option(
            "--broker",
            help="embedded: the pure-Python broker in this process; mosquitto: a managed "
            "Mosquitto with TLS, passwords and ACL, as a school runs it.",
        ),
    ] = BrokerKind.EMBEDDED,
) -> None:
    """Start the whole system on this machine on embedded defaults, until Ctrl-C: the broker,
    the server on SQLite with a demo school, and a demo gate on CAMERA."""
    from broker.managed import MosquittoNotFound
    from campusgate import up as system
    from server.core.config import default_data_dir

    paths = system.UpPaths(data_dir or default_data_dir().parent / "up")
    if mqtt_port == 0 and port_is_free("127.0.0.1", 1883):
        mqtt_port = 1883  # the usual port, unless a system Mosquitto already holds it
    if not port_is_free("127.0.0.1", http_port):
        console.print(f"[red]error:[/red] port {http_port} is taken; pass --http-port")
        raise typer.Exit(1)
    with console.status("preparing the database and the demo school"):
        passwords = system.prepare_demo(paths)
    try:
        if broker_kind is BrokerKind.MOSQUITTO:
            broker = system.start_mosquitto(paths, passwords, mqtt_port)
        else:
            broker = system.start_embedded(mqtt_port)
    except (EmbeddedBrokerError, MosquittoNotFound, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    # A service manager (or `timeout`) stops with SIGTERM: stop the children as for Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    env = system.server_environment(paths, broker, http_port)
    logs = paths.root / "logs"
    children = []
    try:
        server = system.start_child(
            system.campusgate_command("server", "run"), env, logs / "server.log"
        )
        children.append(server)
        with console.status("starting the server"):
            system.wait_until_ready(server, http_port, paths.gallery_key)
        config = system.gate_config(paths, broker, camera, passwords[system.DEMO_GATE])
        gate = system.start_child(
            system.campusgate_command("edge", "--config", str(config)), {}, logs / "gate.log"
        )
        children.insert(0, gate)  # stopped first, so its last events reach the server
        _print_up(broker, http_port, camera, passwords, logs)
        while server.poll() is None:
            if gate.poll() is not None and gate.returncode not in (0, None):
                console.print(
                    f"[yellow]the gate stopped (exit {gate.returncode}); see "
                    f"{logs / 'gate.log'} — the server keeps running[/yellow]"
                )
                gate.returncode = 0  # said once
            time.sleep(0.5)
        console.print(f"[red]the server stopped; see {logs / 'server.log'}[/red]")
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        console.print(f"[red]error:[/red] {exc}; see {logs / 'server.log'}")
    finally:
        for child in children:
            system.stop_child(child)
        broker.stop()
        console.print("stopped")


def _print_up(
    broker: RunningBroker, http_port: int, camera: str, passwords: dict[str, str], logs: Path
) -> None:
    from campusgate.up import DEMO_GATE, DEMO_SITE, DEMO_USERS

    console.print(f"campusgate {__version__} is up")
    console.print(f"  dashboard    http://127.0.0.1:{http_port}/   (API: /docs)")
    if broker.gate_ca is None:
        console.print(f"  MQTT broker  mqtt://127.0.0.1:{broker.server_port}  (embedded, loopback)")
    else:
        console.print(
            f"  MQTT broker  mqtt://127.0.0.1:{broker.server_port} (server), "
            f"mqtts://127.0.0.1:{broker.gate_port} (gates; CA {broker.gate_ca})  (Mosquitto)"
        )
    console.print(f"  gate         {DEMO_SITE}/{DEMO_GATE} on camera {camera}")
    for user in DEMO_USERS:
        console.print(f"  sign in      {user} / {passwords[user]}")
    console.print(f"  logs         {logs}")
    console.print("Ctrl-C stops everything.")
