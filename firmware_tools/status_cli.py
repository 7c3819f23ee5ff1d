"""``gatectl gate status``: what the gates say about themselves on the broker.

Each gate keeps a retained ``status`` message on the broker (``online``, or ``offline`` as its
last will or clean goodbye) and sends ``telemetry`` every ``telemetry.interval_s`` seconds,
which the broker does not keep. So the status of every gate arrives at once, and telemetry
only from the gates that send some while this command listens (``--wait``). Reading those
topics takes a service account (the server's, ``campusgate-server``, by default): the ACL lets
a gate read only its own config, commands and gallery. A gate the broker has no status for
(never connected, or revoked: ``gatectl device revoke`` deletes it) is "never seen"; with the
school server's address and a technician's token, a gate the server disabled shows as
``revoked``.

Exit codes: 0 every gate shown is online, 1 one is offline or revoked or a gate asked for has
never reported (or the broker cannot be reached), 2 bad arguments.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import paho.mqtt.client as mqtt
import typer
from rich.console import Console
from rich.table import Table

from broker.codec import PayloadError, decode
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import Status, Telemetry, utc_now
from broker.topics import Channel, TopicError, check_id, subscription
from firmware_tools.broker_session import BrokerConnectError, BrokerTarget, close, connect
from firmware_tools.server_api import ApiError, ServerApi
from firmware_tools.server_options import ServerCa, server_api

app = typer.Typer(help="Gates: what they report about themselves.", no_args_is_help=True)
console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_PROBLEM, EXIT_USAGE = 1, 2
DEFAULT_ZONE = "Asia/Ho_Chi_Minh"
SERVER_TIMEOUT_S = 5.0


def _fail(message: str, code: int) -> typer.Exit:
    console.print(message, markup=False)
    return typer.Exit(code)


def parse_broker(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as host and port; typer.BadParameter if malformed."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise typer.BadParameter(f"{address!r}: use HOST:PORT, e.g. 10.0.0.5:8883")
    return host, int(port)


@dataclass
class GateReport:
    """What one gate said while we listened."""

    site: str
    device: str
    status: Status | None = None
    telemetry: Telemetry | None = None
    revoked: bool = False

    @property
    def state(self) -> str:
        if self.revoked:
            return "revoked"
        return self.status.state if self.status else "unknown"

    @property
    def last_seen(self) -> datetime | None:
        times = [m.ts for m in (self.status, self.telemetry) if m is not None]
        return max(times) if times else None

    @property
    def latency_ms(self) -> tuple[float, float] | None:
        """Time through the loop's stages, p50 and p95 (each the sum over the stages)."""
        if self.telemetry is None or not self.telemetry.stages:
            return None
        stages = self.telemetry.stages.values()
        return sum(s.p50_ms for s in stages), sum(s.p95_ms for s in stages)

    def as_json(self) -> dict[str, Any]:
        seen = self.last_seen
        return {
            "site": self.site,
            "device": self.device,
            "state": self.state,
            "last_seen": seen.isoformat() if seen else None,
            "status": self.status.model_dump(mode="json") if self.status else None,
            "telemetry": self.telemetry.model_dump(mode="json") if self.telemetry else None,
        }


@dataclass
class _Listener:
    """Collects decoded status and telemetry messages from paho's network thread."""

    gates: dict[tuple[str, str], GateReport] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    subscribed: threading.Event = field(default_factory=threading.Event)
    refused: list[str] = field(default_factory=list)

    def on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return  # a retained status deleted (gatectl does so on revoke): not malformed
        try:
            decoded = decode(message.topic, message.payload)
        except PayloadError as exc:
            with self.lock:
                self.rejected.append(f"{message.topic}: {exc}")
            return
        topic, payload = decoded.topic, decoded.message
        assert topic.device is not None  # status and telemetry are per-device channels
        with self.lock:
            report = self.gates.setdefault(
                (topic.site, topic.device), GateReport(topic.site, topic.device)
            )
            if isinstance(payload, Status):
                report.status = payload
            elif isinstance(payload, Telemetry):
                report.telemetry = payload

    def on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list, _p: object):
        self.refused.extend(str(code) for code in codes if code.is_failure)
        self.subscribed.set()

    def complete(self, wanted: set[tuple[str, str]]) -> bool:
        """Whether every gate asked for by name has sent both status and telemetry."""
        with self.lock:
            return bool(wanted) and all(
                key in self.gates and self.gates[key].status and self.gates[key].telemetry
                for key in wanted
            )


def _filters(gates: list[str]) -> tuple[list[str], set[tuple[str, str]]]:
    """Subscription filters for SITE/DEVICE or SITE arguments, and the gates named in full."""
    if not gates:
        return [subscription(Channel.STATUS), subscription(Channel.TELEMETRY)], set()
    filters, named = [], set()
    for gate in gates:
        site, _, device = gate.partition("/")
        try:
            check_id(site, "site")
            if device:
                check_id(device, "device")
        except TopicError as exc:
            raise _fail(f"{gate}: {exc}", EXIT_USAGE) from None
        if device:
            named.add((site, device))
        for channel in (Channel.STATUS, Channel.TELEMETRY):
            filters.append(subscription(channel, site, device or None))
    return list(dict.fromkeys(filters)), named


def _ago(seen: datetime) -> str:
    seconds = max(0, int((utc_now() - seen).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _table(reports: list[GateReport], zone: ZoneInfo) -> Table:
    table = Table(
        "gate",
        "state",
        "last seen",
        "fps in/done",
        "latency p50/p95",
        "outbox",
        "version",
        "pack",
        "gallery",
    )
    for report in reports:
        colour = {"online": "green", "offline": "red"}.get(report.state, "yellow")
        seen = report.last_seen
        shown = f"{seen.astimezone(zone):%Y-%m-%d %H:%M:%S} ({_ago(seen)})" if seen else "—"
        telemetry, status, latency = report.telemetry, report.status, report.latency_ms
        table.add_row(
            f"{report.site}/{report.device}",
            f"[{colour}]{report.state}[/{colour}]",
            shown,
            f"{telemetry.fps_in:g}/{telemetry.fps_processed:g}" if telemetry else "—",
            f"{latency[0]:.0f}/{latency[1]:.0f} ms" if latency else "—",
            str(telemetry.outbox_depth) if telemetry else "—",
            status.version if status else "—",
            (status.model_pack or "—") if status else "—",
            str(status.gallery_version) if status and status.gallery_version is not None else "—",
        )
    return table


@app.command("status")
def gate_status(
    gates: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SITE/DEVICE|SITE]...", help="Gates to show (default: all)."),
    ] = None,
    broker: Annotated[
        str,
        typer.Option(metavar="HOST:PORT", help="The broker, e.g. 10.0.0.5:8883."),
    ] = "127.0.0.1:1883",
    tls: Annotated[
        bool, typer.Option("--tls", help="Use TLS (implied by --ca or --cert).")
    ] = False,
    ca: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, metavar="FILE", help="CA of the broker."),
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, metavar="FILE", help="Client certificate."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, metavar="FILE", help="Client certificate's key."),
    ] = None,
    username: Annotated[
        str, typer.Option(help="A service account that may read status and telemetry.")
    ] = SERVER_USERNAME,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="GATECTL_BROKER_PASSWORD",
            help="Its password (better: set GATECTL_BROKER_PASSWORD).",
            show_envvar=True,
        ),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            min=0.5,
            max=600,
            help="Seconds to listen for telemetry (gates send it every telemetry.interval_s).",
        ),
    ] = 5.0,
    timezone: Annotated[
        str, typer.Option("--tz", metavar="ZONE", help="Show times in this zone.")
    ] = DEFAULT_ZONE,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="CAMPUSGATE_SERVER",
            metavar="URL",
            help="The school server: with --token, gates it disabled show as revoked.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="CAMPUSGATE_TOKEN", metavar="TOKEN", help="A technician's API token."
        ),
    ] = None,
    server_ca: ServerCa = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each gate's retained status and its latest telemetry, as a table or JSON."""
    host, port = parse_broker(broker)
    api = (
        replace(server_api(server, token, server_ca), timeout_s=SERVER_TIMEOUT_S)
        if server and token
        else None
    )
    if (cert is None) != (key is None):
        raise _fail("--cert and --key go together", EXIT_USAGE)
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"--tz {timezone}: unknown time zone (use an IANA name)", EXIT_USAGE) from None
    filters, named = _filters(gates or [])
    target = BrokerTarget(
        host,
        port,
        username,
        password,
        tls=tls or ca is not None or cert is not None,
        ca_file=ca,
        client_cert=cert,
        client_key=key,
    )
    try:
        client = connect(target)
    except BrokerConnectError as exc:
        raise _fail(str(exc), EXIT_PROBLEM) from None
    listener = _Listener()
    client.on_message = listener.on_message
    client.on_subscribe = listener.on_subscribe
    try:
        client.subscribe([(topic, 0) for topic in filters])
        deadline = time.monotonic() + wait
        with console.status(f"listening on {target.address} for {wait:g} s"):
            while time.monotonic() < deadline and not listener.complete(named):
                time.sleep(0.1)
    finally:
        close(client)
    if listener.refused:
        raise _fail(
            f"the broker refused {username}'s subscription ({listener.refused[0]}): use a "
            "service account the ACL lets read cg/v1/+/+/status and telemetry",
            EXIT_PROBLEM,
        )
    if api is not None:
        _mark_revoked(listener.gates, named, _disabled(api))
    _show(listener, named, zone, as_json)


def _disabled(api: ServerApi) -> set[tuple[str, str]]:
    """The gates the server disabled (revoked), as (SITE, DEVICE); none when it cannot say,
    since the broker's view is this command's answer and the server's only a footnote."""
    try:
        devices = api.devices()
    except ApiError as exc:
        console.print(f"cannot ask the server which gates are revoked: {exc}", markup=False)
        return set()
    return {(d["site"], d["device_id"]) for d in devices if not d["enabled"]}


def _mark_revoked(
    gates: dict[tuple[str, str], GateReport],
    named: set[tuple[str, str]],
    disabled: set[tuple[str, str]],
) -> None:
    """Show disabled gates as revoked: those on the broker (a status not yet deleted) and those
    asked for by name that it no longer has a status for."""
    for key in named & disabled:
        gates.setdefault(key, GateReport(*key))
    for key, report in gates.items():
        report.revoked = key in disabled


def _show(listener: _Listener, named: set[tuple[str, str]], zone: ZoneInfo, as_json: bool) -> None:
    """Print the reports and exit 1 unless every gate shown (and asked for) is online."""
    reports = sorted(listener.gates.values(), key=lambda r: (r.site, r.device))
    missing = sorted(named - set(listener.gates))
    if as_json:
        document = {
            "gates": [report.as_json() for report in reports],
            "missing": [f"{site}/{device}" for site, device in missing],
            "rejected": listener.rejected,
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    elif reports:
        # Piped into a file or a pager the table keeps its rows whole instead of 80 columns.
        Console(width=None if sys.stdout.isatty() else 160).print(_table(reports, zone))
    for topic_problem in listener.rejected:
        console.print(f"malformed message ignored: {topic_problem}", markup=False)
    for site, device in missing:
        console.print(
            f"{site}/{device}: no status on this broker: never seen (never connected, or revoked)"
        )
    if not reports and not missing:
        console.print("no gate has reported to this broker")
    if missing or not reports or any(r.state != "online" for r in reports):
        raise typer.Exit(EXIT_PROBLEM)
