"""``campusgate broker``: run the embedded broker, print the schemas, validate a message."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker.codec import MODELS, PayloadError, decode, json_schemas
from broker.embedded import EmbeddedBrokerError, serve
from broker.topics import Channel

app = typer.Typer(
    help=(
        "Run the embedded MQTT broker on loopback (no subcommand), print the payload schemas, "
        "or validate a message against the cg/v1 contract."
    ),
    no_args_is_help=False,
    rich_markup_mode=None,
)
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def broker(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Loopback address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port for MQTT.")] = 1883,
) -> None:
    """Run the embedded MQTT broker on loopback until Ctrl-C (with no subcommand).

    It allows anonymous clients and keeps messages in memory: it is the one-command default for
    a laptop or a demo. A school runs Mosquitto with the templates in broker/mosquitto/.
    """
    if ctx.invoked_subcommand is not None:
        return
    err.print(f"embedded broker on mqtt://{host}:{port} (Ctrl-C stops it)")
    try:
        asyncio.run(_serve_until_interrupted(host, port))
    except EmbeddedBrokerError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc.strerror}")
        raise typer.Exit(1) from None


async def _serve_until_interrupted(host: str, port: int) -> None:
    await serve(host, port, asyncio.Event())


@app.command()
def schema(
    channel: Annotated[
        Channel | None, typer.Argument(help="Print only this channel's schema.")
    ] = None,
) -> None:
    """Print the JSON Schema of every payload (or of one channel)."""
    schemas = json_schemas()
    out = schemas[channel.value] if channel else schemas
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


@app.command()
def validate(
    topic: Annotated[str, typer.Argument(help="Topic the message is published on.")],
    file: Annotated[str, typer.Argument(help="File holding the payload, or - for stdin.")],
) -> None:
    """Check one message against the contract: exit 0 if valid, 2 with the reason if not."""
    try:
        payload = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        typer.echo(f"cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        decoded = decode(topic, payload)
    except PayloadError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(2) from None
    where = decoded.topic.site + (f"/{decoded.topic.device}" if decoded.topic.device else "")
    model = MODELS[decoded.topic.channel].__name__
    print(f"valid: {model} (schema v{decoded.message.schema_version}) for {where}")
