"""``gatectl doctor``: check a gate end to end, one line per check, each failure with a hint.

The checks follow what a gate needs at start-up, in that order: a valid configuration, a clock
that agrees with the server's (event times decide who was late), its broker reachable and
accepting its credential, its site's gallery fetched from the server as the gate fetches it (the
gate's secret, its CA, the server's signature, the announced sha256), the model pack intact,
the camera giving frames, the card reader answering, room on the data disk, and an outbox that
is draining. What is not configured (no reader, no ``--server`` for the clock, no bundle naming
the server) is skipped, not failed. Exit codes: 0 nothing failed,
1 a check failed, 2 bad arguments.

Run it with the gate's service stopped: the camera and the reader's serial port can be opened
by one program at a time. The broker check signs in with the gate's own credential, which on
the TLS listener means the gate's own session: it resumes that session without taking any
message queued for the gate, and a running gate is disconnected once and reconnects by itself.
"""

from __future__ import annotations

import email.utils
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import httpx
import typer
from rich.console import Console

from broker.payloads import GalleryNotice
from edge.cards.reader import ReaderError, make_reader
from edge.config import ConfigError, EdgeConfig, load_config
from edge.gallery_store import GalleryRefused, gate_gallery_store
from edge.outbox import Outbox
from firmware_tools.broker_session import BrokerConnectError, BrokerTarget, close, connect
from firmware_tools.bundle import MANIFEST_FILE
from firmware_tools.camera_probe import CameraProbeError, probe_camera
from models.packs import PackError, default_models_dir, load_pack

console = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

MAX_CLOCK_SKEW_S = 5.0
"""More than this and events land in the wrong minute of the roll (late or not)."""
MIN_FREE_BYTES = 500 * 1024 * 1024
"""Room for a full outbox (100,000 events of ~0.5 KB) ten times over, plus the gallery."""
MAX_OUTBOX_AGE_S = 15 * 60
"""An event this old still on the gate means events are not being delivered."""
OUTBOX_FULL_SHARE = 0.8
NOTICE_MAX_BYTES = 64 * 1024
"""A gallery notice is well under 1 KB; more is not a notice."""

Outcome = Literal["pass", "fail", "skip"]
_MARKS = {"pass": "[green]✔[/green]", "fail": "[red]✘[/red]", "skip": "[dim]–[/dim]"}


@dataclass(frozen=True)
class Check:
    """The result of one check: what was found and, when it failed, what to do."""

    name: str
    outcome: Outcome
    detail: str
    hint: str = ""


def _pass(name: str, detail: str) -> Check:
    return Check(name, "pass", detail)


def _fail(name: str, detail: str, hint: str) -> Check:
    return Check(name, "fail", detail, hint)


def _skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


def check_clock(server: str | None, timeout: float) -> Check:
    """Compare this clock with the ``Date`` header of the server's answer.

    The request does not verify the server's certificate: it only reads the time, sends
    nothing secret, and a clock that is far off is exactly when verification would fail.
    """
    if server is None:
        return _skip("clock", "no --server given (nor a bundle naming one) to compare with")
    try:
        started = time.time()
        answer = httpx.get(server, timeout=timeout, verify=False, follow_redirects=False)
        ended = time.time()
    except httpx.HTTPError as exc:
        return _fail("clock", f"{server}: no answer ({exc})", "check the server URL and network")
    date = answer.headers.get("date")
    if date is None:
        return _fail("clock", f"{server} sent no Date header", "give the campusgate server's URL")
    # Date has whole seconds, truncated: the server's time was within the second after it.
    server_time = email.utils.parsedate_to_datetime(date).timestamp() + 0.5
    skew = (started + ended) / 2 - server_time
    ahead = "ahead of" if skew > 0 else "behind"
    detail = f"{abs(skew):.1f} s {ahead} {server} (±{0.5 + (ended - started) / 2:.1f} s)"
    if abs(skew) > MAX_CLOCK_SKEW_S:
        return _fail(
            "clock",
            detail,
            "turn on time sync (timedatectl set-ntp true) or set the time; events carry this "
            "clock's time",
        )
    return _pass("clock", detail)


def check_broker(config: EdgeConfig, timeout: float) -> Check:
    """Sign in to the gate's broker with the gate's credential (a real CONNECT)."""
    broker = config.broker
    target = BrokerTarget(
        broker.host,
        broker.port,
        config.username,
        broker.password.get_secret_value() if broker.password else None,
        tls=broker.ca_file is not None,
        ca_file=broker.ca_file,
        client_cert=broker.client_cert,
        client_key=broker.client_key,
    )
    try:
        client = connect(
            target,
            client_id=f"{config.device.site}.{config.device.device}",
            clean_session=False,  # the gate's persistent session, left as it was
            timeout=timeout,
        )
    except BrokerConnectError as exc:
        return _fail("broker", exc.problem, exc.hint)
    close(client)
    return _pass("broker", f"{target.address} accepted {config.username}")


def check_gallery(config: EdgeConfig, api: str | None, timeout: float) -> Check:
    """Fetch the site's newest gallery as the gate does, without keeping it: the signed notice
    from the server (``GET …/gallery/{site}``) with the gate's secret over its CA, then the file
    it names, checked against the signature, the size and the sha256."""
    if api is None:
        return _skip("gallery", "no bundle (or claim) naming the server's API")
    if config.broker.password is None and config.broker.client_cert is None:
        return _skip("gallery", "the gate has no secret yet: it exchanges its claim token first")
    try:
        store = gate_gallery_store(config, timeout)
    except (OSError, ValueError) as exc:
        return _fail("gallery", str(exc), "provision the gate again: the bundle holds gallery.pub")
    url = f"{api.rstrip('/')}/gallery/{config.device.site}"
    try:
        notice = GalleryNotice.model_validate_json(store.fetch(url, NOTICE_MAX_BYTES))
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        if code == 404:
            return _skip("gallery", f"the server has published no gallery for {config.device.site}")
        if code == 401:
            return _fail(
                "gallery",
                f"{url}: the server refused {config.username} (401)",
                "the server does not know this secret: provision the gate again",
            )
        return _fail("gallery", f"{url}: HTTP {code}", "check server_url in bundle.json")
    except httpx.ConnectError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return _fail(
                "gallery",
                f"{url}: the server's certificate is not signed by the gate's CA ({exc})",
                "serve HTTPS with the certificate `gatectl broker ca` made (campusgate server "
                "run --tls-cert …), or give the gate the CA that signed the server's",
            )
        return _fail("gallery", f"{url}: no answer ({exc})", "check the server URL and network")
    except (httpx.HTTPError, ValueError) as exc:
        return _fail(
            "gallery", f"{url}: {exc}", "bundle.json must name the campusgate API (…/api/v1)"
        )
    try:
        gallery = store.verified(notice)
    except GalleryRefused as exc:
        return _fail(
            "gallery",
            f"version {notice.version} refused: {exc}",
            "a signature that does not match means an old gallery.pub: provision the gate again",
        )
    return _pass(
        "gallery",
        f"version {gallery.version}, {len(gallery)} templates of {len(gallery.persons)} "
        f"students from {notice.url}: signed by the server, as announced",
    )


def check_model_pack(config: EdgeConfig) -> Check:
    """The configured pack is installed and every file matches its recorded sha256."""
    name = config.recognition.pack
    models_dir = config.recognition.models_dir or default_models_dir()
    try:
        pack = load_pack(name, models_dir)
    except PackError as exc:
        return _fail("model pack", str(exc), f"gatectl models install {name}")
    files = len(pack.manifest.files)
    return _pass("model pack", f"{name} v{pack.manifest.version}: {files} files, hashes match")


def check_camera(config: EdgeConfig, timeout: float) -> Check:
    """The camera opens and gives frames (``gatectl camera test`` looks closer)."""
    source = config.camera.source
    try:
        probe = probe_camera(source, frames=10, keep=1, timeout=timeout)
    except CameraProbeError as exc:
        return _fail(
            "camera",
            str(exc),
            "check camera.source; stop the gate's service first (one program at a time)",
        )
    detail = (
        f"{source}: {probe.width}×{probe.height} at {probe.fps:g} fps, "
        f"brightness {probe.brightness:.0f}/255 ({probe.exposure})"
    )
    if probe.exposure != "ok":
        detail += f"; run `gatectl camera test {source}`"
    return _pass("camera", detail)


def check_reader(config: EdgeConfig) -> Check:
    """The card reader's port opens and, for a PN532, the reader answers."""
    if config.reader is None:
        return _skip("card reader", "no [reader] in the config")
    reader = make_reader(config.reader)
    try:
        reader.open()
    except ReaderError as exc:
        return _fail(
            "card reader",
            str(exc),
            "check reader.port, the wiring and the baud rate; stop the gate's service first",
        )
    try:
        info = reader.info()
    finally:
        reader.close()
    firmware = f", firmware {info['firmware']}" if "firmware" in info else ""
    return _pass("card reader", f"{info['kind']} on {info['port']}{firmware}")


def check_disk(config: EdgeConfig) -> Check:
    """The data folder is writable and its disk has room for a full outbox."""
    data_dir = config.storage.data_dir
    existing = next(p for p in (data_dir, *data_dir.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        return _fail(
            "disk", f"{existing} is not writable", "give the gate's user the data folder (chown)"
        )
    free = shutil.disk_usage(existing).free
    detail = f"{free / 1024**3:.1f} GiB free for {data_dir}"
    if free < MIN_FREE_BYTES:
        return _fail(
            "disk",
            detail,
            f"free at least {MIN_FREE_BYTES // 1024**2} MiB: the outbox keeps events on disk "
            "while the network is down",
        )
    return _pass("disk", detail)


def check_outbox(config: EdgeConfig) -> Check:
    """Events are not piling up on the gate."""
    path = config.storage.data_dir / "outbox.db"
    if not path.exists():
        return _pass("outbox", "empty (the gate has not run here yet)")
    capacity = config.storage.outbox_capacity
    with Outbox(path, capacity) as outbox:
        depth, age = outbox.depth(), outbox.oldest_age_s()
    if depth == 0:
        return _pass("outbox", "empty")
    detail = f"{depth} of {capacity} events waiting, the oldest {age or 0:.0f} s old"
    if depth >= OUTBOX_FULL_SHARE * capacity or (age or 0) > MAX_OUTBOX_AGE_S:
        return _fail(
            "outbox",
            detail,
            "events are not being delivered: fix the broker check, then start the gate; "
            "it sends them in order",
        )
    return _pass("outbox", detail)


def bundle_api(config_path: Path, config: EdgeConfig) -> str | None:
    """The server's API base that the gate's claim or its provisioning bundle (``bundle.json``
    beside the config) names, or None."""
    if config.claim is not None:
        return config.claim.server_url
    manifest = config_path.parent / MANIFEST_FILE
    try:
        return json.loads(manifest.read_text()).get("server_url")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class _Where:
    """What the checks after the config's need besides it."""

    clock: str | None  # the server to compare clocks with
    api: str | None  # the server's API, as the bundle names it
    timeout: float


_Step = Callable[[EdgeConfig, _Where], Check]
_STEPS: list[tuple[str, _Step]] = [
    ("clock", lambda _config, where: check_clock(where.clock, where.timeout)),
    ("broker", lambda config, where: check_broker(config, where.timeout)),
    ("gallery", lambda config, where: check_gallery(config, where.api, where.timeout)),
    ("model pack", lambda config, _where: check_model_pack(config)),
    ("camera", lambda config, where: check_camera(config, where.timeout)),
    ("card reader", lambda config, _where: check_reader(config)),
    ("disk", lambda config, _where: check_disk(config)),
    ("outbox", lambda config, _where: check_outbox(config)),
]


def run_checks(
    config_path: Path, server: str | None, timeout: float, show: Callable[[Check], None]
) -> list[Check]:
    """Every check, in order, each shown as soon as it is done."""
    checks: list[Check] = []

    def done(check: Check) -> None:
        checks.append(check)
        show(check)

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        done(_fail("config", str(exc), "fix the named fields (or re-provision the gate)"))
        for name, _step in _STEPS:
            done(_skip(name, "the config is not valid"))
        return checks
    done(_pass("config", f"{config_path}: gate {config.device.site}/{config.device.device}"))
    api = bundle_api(config_path, config)
    where = _Where(clock=server or api, api=api, timeout=timeout)
    for name, step in _STEPS:
        with console.status(f"checking {name}…"):
            done(step(config, where))
    return checks


def _print(check: Check) -> None:
    skipped = "skipped, " if check.outcome == "skip" else ""
    out.print(f"{_MARKS[check.outcome]} [bold]{check.name}[/bold]: ", end="")
    out.print(f"{skipped}{check.detail}", markup=False)
    if check.hint:
        out.print(f"    hint: {check.hint}", markup=False)


def doctor(
    config: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, metavar="FILE", help="The gate's TOML (gate.toml)."
        ),
    ],
    server: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The school server, e.g. https://school.example/healthz; its Date header "
            "is the reference for the clock check (default: the server the gate's bundle "
            "names; skipped if none).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.5, max=120, help="Seconds each network or camera check waits.")
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Check a gate end to end: config, clock, broker, gallery, model pack, camera, reader,
    disk, outbox. Exit 1 if any check fails."""
    checks = run_checks(config, server, timeout, (lambda _: None) if as_json else _print)
    failed = [check for check in checks if check.outcome == "fail"]
    if as_json:
        document = {
            "ok": not failed,
            "checked_at": datetime.now(UTC).isoformat(),
            "checks": [asdict(check) for check in checks],
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        summary = f"{len(failed)} check(s) failed" if failed else "all checks passed"
        console.print(summary)
    if failed:
        raise typer.Exit(1)
