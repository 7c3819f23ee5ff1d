"""``gatectl device``: register gates, give them credentials and bundles, and revoke them.

Everything goes through the server's API with a technician's token: the server is the device
registry, and the broker's password file and ACL are rendered from it. A command given
``--broker-dir`` (run on the broker's host) also brings the broker up to date and reloads it,
so a new credential works, and a revoked one stops working, at once.

Exit codes: 0 done; 1 failed (the server refused or was unreachable, the broker was not
reloaded, a bundle is in the way); 2 wrong usage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from rich.console import Console
from rich.table import Table

from firmware_tools.broker_cli import (
    ServicePassword,
    check_broker_dir,
    service_target,
    sync_or_fail,
)
from firmware_tools.bundle import CONFIG_FILE, BundleExists, GateBundle
from firmware_tools.server_api import ApiError
from firmware_tools.server_options import AsJson, ServerCa, ServerUrl, Token, fail, server_api

app = typer.Typer(
    help="Gates: register, provision (bundle or claim token), revoke, list.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console(stderr=True)

DEFAULT_TLS_PORT = 8883
_TTL = re.compile(r"^(\d+)([smhd]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    LINE = "line"


DeviceName = Annotated[
    str,
    typer.Argument(metavar="DEVICE", help="SITE.DEVICE, or DEVICE when only one site has it."),
]
Out = Annotated[
    Path | None,
    typer.Option(metavar="DIR", help="Write the gate's bundle here (gate.toml, ca.crt, …)."),
]
BrokerAddress = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="GATECTL_BROKER",
        metavar="HOST[:PORT]",
        help=f"The broker as gates reach it (TLS; port {DEFAULT_TLS_PORT} if not given).",
    ),
]
CaPath = Annotated[
    Path | None,
    typer.Option(
        "--ca",
        envvar="GATECTL_CA",
        exists=True,
        metavar="FILE|DIR",
        help="The deployment's CA certificate, or the folder `gatectl broker ca` wrote.",
    ),
]
Camera = Annotated[
    str | None,
    typer.Option(metavar="SOURCE", help="The gate's camera: index, /dev/videoN, URL or file."),
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", metavar="DIR", help="The gate's state folder (default /var/lib/campusgate)."
    ),
]
Force = Annotated[bool, typer.Option(help="Replace a bundle already in --out.")]
OptionalBrokerDir = Annotated[
    Path | None,
    typer.Option(
        "--broker-dir",
        metavar="DIR",
        help="On the broker's host: update its password file and ACL and reload it.",
    ),
]


@app.command()
def add(
    site: Annotated[
        str, typer.Argument(metavar="SITE", help="The site's code (the {site} of its topics).")
    ],
    device: Annotated[
        str, typer.Argument(metavar="DEVICE", help="The gate's id at its site, e.g. gate-1.")
    ],
    server: ServerUrl,
    token: Token,
    server_ca: ServerCa = None,
    name: Annotated[str, typer.Option(help="A name people recognise, e.g. 'Cổng chính'.")] = "",
    direction: Annotated[
        Direction, typer.Option(help="Which way people pass: in, out, or line (both).")
    ] = Direction.IN,
    out: Out = None,
    broker: BrokerAddress = None,
    ca: CaPath = None,
    camera: Camera = None,
    data_dir: DataDir = None,
    force: Force = False,
    broker_dir: OptionalBrokerDir = None,
    as_json: AsJson = False,
) -> None:
    """Register a gate on the server and create its broker credential.

    With --out (and --broker, --ca) the gate's bundle is written at once; otherwise write it
    later with `gatectl device provision`, which issues a new credential."""
    target = _bundle_target(out, broker, ca, force) if out is not None else None
    if broker_dir is not None:
        check_broker_dir(broker_dir)
    api = server_api(server, token, server_ca)
    try:
        with console.status(f"registering {site}.{device}"):
            registered = api.register(site, device, name, direction.value)
            credential = api.issue_secret(registered["id"])
            key = api.gallery_key()["public_key"] if out is not None else ""
    except ApiError as exc:
        fail(str(exc))
    result: dict[str, Any] = {"device": registered, "username": credential["username"]}
    if out is not None and target is not None:
        spec = target.bundle(registered, api.base_url, camera, data_dir)
        files = _write(
            lambda: spec.write_password_bundle(out, credential["password"], key, force=force)
        )
        result["bundle"] = [str(path) for path in files]
    if broker_dir is not None:
        result["broker"] = sync_or_fail(api, broker_dir)
    _report(result, as_json, f"registered {credential['username']} (id {registered['id']})")
    if out is None and not as_json:
        console.print(
            f"write its bundle: gatectl device provision {credential['username']} --out DIR"
        )


@app.command()
def provision(
    device: DeviceName,
    server: ServerUrl,
    token: Token,
    server_ca: ServerCa = None,
    out: Out = None,
    claim_token: Annotated[
        bool,
        typer.Option(
            "--claim-token",
            help="Issue a one-time claim token instead of writing the secret: the gate "
            "exchanges it at its first start. Without --out the token is only printed.",
        ),
    ] = False,
    ttl: Annotated[
        str,
        typer.Option(
            metavar="DURATION", help="How long the claim token is valid: 90s, 15m, 2h, 1d."
        ),
    ] = "15m",
    broker: BrokerAddress = None,
    ca: CaPath = None,
    camera: Camera = None,
    data_dir: DataDir = None,
    force: Force = False,
    broker_dir: OptionalBrokerDir = None,
    broker_password: ServicePassword = None,
    as_json: AsJson = False,
) -> None:
    """Give a registered gate a new credential and write its bundle (DIR/gate.toml, ca.crt,
    gallery.pub, bundle.json), so that `campusgate edge --config DIR/gate.toml` starts it.

    The gate's previous secret, and any unused claim token, stop working. Render the broker
    afterwards (--broker-dir here, or `gatectl broker sync` on the broker's host). With
    --broker-dir, a gate still connected on its old secret is disconnected by the reload, and
    its retained status is deleted (the broker publishes no will for it), so it does not show
    online until it starts from the new bundle."""
    seconds = _ttl_seconds(ttl)
    if out is None and not claim_token:
        raise typer.BadParameter("give --out DIR (or --claim-token to print a token)")
    target = _bundle_target(out, broker, ca, force) if out is not None else None
    service = None
    if broker_dir is not None:
        check_broker_dir(broker_dir)
        service = service_target(broker_dir, broker_password)
    api = server_api(server, token, server_ca)
    try:
        with console.status(f"provisioning {device}"):
            found = api.find_device(device)
            if claim_token:
                issued = api.issue_claim_token(found["id"], seconds)
            else:
                issued = api.issue_secret(found["id"])
                key = api.gallery_key()["public_key"]
    except ApiError as exc:
        fail(str(exc))
    result: dict[str, Any] = {"device": found, "username": issued["username"]}
    if claim_token:
        result["expires_at"] = issued["expires_at"]
    if out is not None and target is not None:
        spec = target.bundle(found, api.base_url, camera, data_dir)
        if claim_token:
            files = _write(
                lambda: spec.write_claim_bundle(
                    out, issued["token"], issued["expires_at"], force=force
                )
            )
        else:
            files = _write(
                lambda: spec.write_password_bundle(out, issued["password"], key, force=force)
            )
        result["bundle"] = [str(path) for path in files]
    elif claim_token:
        result["claim_token"] = issued["token"]
    if broker_dir is not None:
        gate = (found["site"], found["device_id"])
        result["broker"] = sync_or_fail(api, broker_dir, service=service, new_credential=[gate])
    if out is None and not as_json:
        print(issued["token"])  # the one thing on stdout, for scripts
    kind = "claim token" if claim_token else "secret"
    where = f"; bundle in {out}" if out is not None else ""
    _report(result, as_json, f"new {kind} for {issued['username']}{where}")


@app.command()
def revoke(
    device: DeviceName,
    server: ServerUrl,
    token: Token,
    server_ca: ServerCa = None,
    broker_dir: OptionalBrokerDir = None,
    broker_password: ServicePassword = None,
    as_json: AsJson = False,
) -> None:
    """Cut a gate off: the server disables it and deletes its secret and claim tokens; with
    --broker-dir the broker drops its account and is reloaded, which disconnects the gate if
    it is connected and refuses it from then on, and its retained status is deleted (the
    broker publishes no last will for it), so `gatectl gate status` stops showing it online."""
    service = None
    if broker_dir is not None:
        check_broker_dir(broker_dir)
        service = service_target(broker_dir, broker_password)
    api = server_api(server, token, server_ca)
    try:
        with console.status(f"revoking {device}"):
            found = api.find_device(device)
            revoked = api.revoke(found["id"])
    except ApiError as exc:
        fail(str(exc))
    username = f"{revoked['site']}.{revoked['device_id']}"
    result: dict[str, Any] = {"device": revoked, "username": username}
    if broker_dir is not None:
        result["broker"] = sync_or_fail(api, broker_dir, service=service)
    _report(result, as_json, f"revoked {username} on the server")
    if broker_dir is None and not as_json:
        console.print(
            "[yellow]the broker accepts the gate, and shows its last status, until it is "
            "updated: run `gatectl broker sync --broker-dir DIR` on the broker's host (it also "
            "deletes the gate's status)[/yellow]"
        )


@app.command("list")
def list_devices(
    server: ServerUrl, token: Token, server_ca: ServerCa = None, as_json: AsJson = False
) -> None:
    """List the registered gates with their state."""
    try:
        devices = server_api(server, token, server_ca).devices()
    except ApiError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(devices, indent=2, ensure_ascii=False))
        return
    table = Table("gate", "name", "direction", "enabled", "secret", "status", "last seen")
    for d in devices:
        table.add_row(
            f"{d['site']}.{d['device_id']}",
            d["name"],
            d["direction"],
            "yes" if d["enabled"] else "[red]no[/red]",
            "yes" if d["has_secret"] else "no",
            d["status"],
            d["last_seen_at"] or "",
        )
    Console().print(table if devices else "no gates registered")


def _ttl_seconds(text: str) -> int:
    found = _TTL.match(text.strip())
    if not found:
        raise typer.BadParameter(
            f"{text!r} is not a duration like 90s, 15m, 2h or 1d", param_hint="--ttl"
        )
    return int(found[1]) * _TTL_UNITS[found[2]]


@dataclass(frozen=True)
class _BundleTarget:
    """Where a bundle goes and what it says of the broker, checked before the server is asked."""

    host: str
    port: int
    ca_pem: bytes

    def bundle(
        self, device: dict[str, Any], api_url: str, camera: str | None, data_dir: Path | None
    ) -> GateBundle:
        return GateBundle(
            site=device["site"],
            device=device["device_id"],
            direction=device["direction"],
            broker_host=self.host,
            broker_port=self.port,
            ca_pem=self.ca_pem,
            api_url=api_url,
            camera=camera,
            data_dir=data_dir,
        )


def _bundle_target(out: Path, broker: str | None, ca: Path | None, force: bool) -> _BundleTarget:
    """What a bundle needs, or the usage error (exit 2) or failure (exit 1) it would hit, found
    before anything changes on the server."""
    if broker is None:
        raise typer.BadParameter("a bundle needs the broker's address", param_hint="--broker")
    if ca is None:
        raise typer.BadParameter("a bundle needs the CA certificate", param_hint="--ca")
    host, port = _host_port(broker)
    if (out / CONFIG_FILE).exists() and not force:
        fail(f"{out / CONFIG_FILE} exists; pass --force to replace the bundle")
    ca_file = ca / "ca.crt" if ca.is_dir() else ca
    try:
        pem = ca_file.read_bytes()
        x509.load_pem_x509_certificates(pem)
    except (OSError, ValueError) as exc:
        fail(f"{ca_file} is not a CA certificate: {exc}")
    return _BundleTarget(host, port, pem)


def _host_port(address: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port``; the gates' TLS port by default."""
    host, sep, port = address.rpartition(":")
    if not sep or host.endswith(":") or (host.startswith("[") != host.endswith("]")):
        return address.strip("[]"), DEFAULT_TLS_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise typer.BadParameter(f"{address!r}: the port must be 1-65535", param_hint="--broker")
    return host.strip("[]"), int(port)


def _write(make: Callable[[], list[Path]]) -> list[Path]:
    """Run a bundle writer; a bundle in the way or an unwritable folder is exit 1."""
    try:
        return make()
    except (BundleExists, OSError) as exc:
        fail(f"the bundle was not written: {exc}")


def _report(result: dict[str, Any], as_json: bool, summary: str) -> None:
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        console.print(summary)
