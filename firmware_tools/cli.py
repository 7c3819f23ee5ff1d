"""``gatectl``: provisioning, credentials and certificates, diagnostics for gates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from broker.pki import create_ca, issue_server_cert
from firmware_tools.cccd_cli import app as cccd_app
from firmware_tools.models_cli import app as models_app
from firmware_tools.reader_cli import app as reader_app

app = typer.Typer(
    help="gatectl: bring campusgate gates online and keep them healthy.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
broker_app = typer.Typer(help="Broker certificates and configuration.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
app.add_typer(models_app, name="models")
app.add_typer(cccd_app, name="cccd")
app.add_typer(reader_app, name="reader")
console = Console(stderr=True)


@broker_app.command("ca")
def broker_ca(
    out: Annotated[Path, typer.Option(metavar="DIR", help="Directory for the PEM files.")],
    host: Annotated[
        list[str],
        typer.Option(metavar="NAME", help="Host name or IP gates use to reach the broker; repeat."),
    ],
    force: Annotated[bool, typer.Option(help="Replace an existing CA (rotation).")] = False,
) -> None:
    """Create the deployment's CA and the broker's TLS server certificate.

    Writes ca.crt, ca.key, server.crt and server.key into DIR. Keep ca.key off the broker host:
    it signs every certificate gates will trust.
    """
    out.mkdir(parents=True, exist_ok=True)
    if (out / "ca.key").exists() and not force:
        console.print(f"{out / 'ca.key'} exists; pass --force to rotate the CA")
        raise typer.Exit(1)
    ca = create_ca()
    ca.write(out / "ca.crt", out / "ca.key")
    issue_server_cert(ca, host).write(out / "server.crt", out / "server.key")
    console.print(f"CA and server certificate for {', '.join(host)} written to {out}")
