"""``campusgate bench …``: run a benchmark and print its figures as one JSON object."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(
    help="Measure speed and memory; each benchmark prints one JSON object.", no_args_is_help=True
)


@app.command()
def contract(
    messages: Annotated[int, typer.Option(min=100, help="How many events to decode.")] = 20_000,
) -> None:
    """Cost of validating MQTT event payloads against the contract, vs plain json.loads."""
    from benchmarks.contract import run

    print(json.dumps(run(messages), indent=2))
