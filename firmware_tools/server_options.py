"""Command-line options shared by the ``gatectl`` commands that call the school server, and
the way every such command reports a failure (exit code 1, the server's own message)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from firmware_tools.server_api import ServerApi, api_base

ServerUrl = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="CAMPUSGATE_SERVER",
        metavar="URL",
        help="The school server, e.g. https://school.example.",
    ),
]
Token = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="CAMPUSGATE_TOKEN",
        metavar="TOKEN",
        help="A technician's API token from POST /api/v1/auth/tokens.",
    ),
]
ServerCa = Annotated[
    Path | None,
    typer.Option(
        "--server-ca",
        envvar="CAMPUSGATE_SERVER_CA",
        exists=True,
        dir_okay=False,
        metavar="FILE",
        help="CA of the server's HTTPS certificate, if not a public one.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

err = Console(stderr=True)


def server_api(server: str, token: str, server_ca: Path | None) -> ServerApi:
    """The API client for these options; a malformed address is a usage error (exit 2)."""
    try:
        return ServerApi(api_base(server), token, server_ca)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server") from None


def fail(message: str) -> NoReturn:
    """Print ``message`` as an error and exit 1 (the operation failed; usage was fine)."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)
