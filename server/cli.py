"""``campusgate server …``: run the school server and look after its database.

Settings come from ``CAMPUSGATE_SERVER__…`` variables (see :mod:`server.core.config`); the
database is SQLite under the data directory unless ``CAMPUSGATE_SERVER__DATABASE_URL`` says
otherwise.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from server.core.config import ServerSettings
    from server.ingest import IngestProcesses

# The server's modules (SQLAlchemy, Alembic, paho…) are imported inside the commands: every
# `campusgate` command, a gate's included, loads this file, and they take over a second.

app = typer.Typer(
    help="The school server: gate ingest, attendance, web API, and its database.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console(stderr=True)
log = logging.getLogger(__name__)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _settings() -> ServerSettings:
    from pydantic import ValidationError

    from server.core.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        raise _fail(f"bad server settings (CAMPUSGATE_SERVER__…):\n{exc}", 2) from None


def _engine(settings: ServerSettings) -> Engine:
    from server.db import DatabaseUrlError, create_db_engine

    try:
        return create_db_engine(settings.database_url)
    except DatabaseUrlError as exc:
        raise _fail(str(exc), 2) from None


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _ingest_processes(settings: ServerSettings, count: int) -> IngestProcesses:
    from campusgate.logs import setup_logging
    from server.ingest import IngestProcesses

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    return IngestProcesses(settings, count, initializer=setup_logging, initargs=(level,))


def _until_signalled(stop: threading.Event) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())


def _watch(pool: IngestProcesses, stop: threading.Event) -> list[str]:
    """Wait until ``stop`` is set (returns []) or a worker died (returns which): a server that
    silently stopped ingesting would be worse than one that exits for its supervisor to
    restart."""
    while not stop.wait(1.0):
        if failed := pool.failed():
            log.error("ingest worker ended unexpectedly", extra={"workers": ",".join(failed)})
            return failed
    return []


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema (safe to repeat)."""
    from server.migrations import current_revision, upgrade

    settings = _settings()
    engine = _engine(settings)
    upgrade(engine)
    console.print(f"{_shown(settings.database_url)} is at revision {current_revision(engine)}")


@app.command()
def demo() -> None:
    """Load the demo school (Vietnamese names, classes 10A1-12A2, gates at site 'demo')."""
    from server.demo import DemoError, load_demo
    from server.migrations import upgrade

    settings = _settings()
    engine = _engine(settings)
    upgrade(engine)
    zone = settings.timezone
    try:
        summary = load_demo(engine, datetime.now(ZoneInfo(zone)).date(), zone)
    except DemoError as exc:
        raise _fail(str(exc)) from None
    console.print(
        f"demo school loaded: school year {summary.school_year}, {summary.classes} classes, "
        f"{summary.students} students, {summary.guardians} guardians, {summary.devices} gates"
    )


@app.command("backup")
def backup_command(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="The backup file to write.")],
) -> None:
    """Write a consistent backup of the database (safe while the server runs)."""
    from server.backup import BackupError, backup

    settings = _settings()
    try:
        backup(settings.database_url, out)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    console.print(f"backup of {_shown(settings.database_url)} written to {out}")


@app.command("restore")
def restore_command(
    source: Annotated[Path, typer.Argument(metavar="IN", help="A file made by 'backup'.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before replacing.")] = False,
) -> None:
    """Replace the database's contents with a backup (stop the server first)."""
    from server.backup import BackupError, restore
    from server.migrations import current_revision, upgrade

    settings = _settings()
    if not yes:
        typer.confirm(
            f"Replace everything in {_shown(settings.database_url)} with {source}?", abort=True
        )
    try:
        restore(settings.database_url, source)
    except BackupError as exc:
        raise _fail(str(exc)) from None
    engine = _engine(settings)
    upgrade(engine)  # a backup made by an older version comes up to this one's schema
    console.print(f"{source} restored; database at revision {current_revision(engine)}")


@app.command()
def ingest(
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes (default: ingest.workers setting)."),
    ] = None,
) -> None:
    """Run only the ingest workers, until Ctrl-C or SIGTERM."""
    from server.migrations import current_revision, head_revision

    settings = _settings()
    engine = _engine(settings)
    if current_revision(engine) != head_revision():
        raise _fail("the database is not at the newest schema: run 'campusgate server migrate'")
    engine.dispose()
    count = workers or settings.ingest.workers
    if count > 1 and not settings.mqtt.share_group:
        raise _fail("several workers need a shared subscription (mqtt.share_group)", 2)
    stop = threading.Event()
    _until_signalled(stop)
    pool = _ingest_processes(settings, count)
    pool.start()
    console.print(f"{count} ingest worker(s) on {settings.mqtt.host}:{settings.mqtt.port}")
    try:
        failed = _watch(pool, stop)
    finally:
        pool.stop()
    if failed:
        raise typer.Exit(1)


def http_overrides(
    host: str | None,
    port: int | None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    """Make ``--host``/``--port``/``--tls-…`` the process's HTTP settings, not only uvicorn's:
    gallery notices tell gates this address and scheme (``gallery_publish.default_base_url``),
    and the ingest workers started here inherit the environment."""
    from server.core.config import get_settings

    options = (("HOST", host), ("PORT", port), ("TLS_CERTFILE", tls_cert), ("TLS_KEYFILE", tls_key))
    for name, value in options:
        if value is not None:
            os.environ[f"CAMPUSGATE_SERVER__HTTP__{name}"] = str(value)
    get_settings.cache_clear()


@app.command()
def notify() -> None:
    """Run only a notification dispatcher, until Ctrl-C or SIGTERM. Start as many as needed,
    here or on other hosts: they share the outbox without sending anything twice."""
    from server.migrations import current_revision, head_revision
    from server.notify.dispatcher import dispatch_loop

    settings = _settings()
    engine = _engine(settings)
    if current_revision(engine) != head_revision():
        raise _fail("the database is not at the newest schema: run 'campusgate server migrate'")
    stop = threading.Event()
    _until_signalled(stop)
    console.print(f"notification dispatcher on {_shown(settings.database_url)}")
    dispatch_loop(engine, settings.notify, stop)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Web server address (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Web server port (default: setting).")] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="Serve HTTPS with this PEM certificate (e.g. server.crt of gatectl "
            "broker ca); needs --tls-key."
        ),
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The PEM private key of --tls-cert.")] = None,
) -> None:
    """Migrate, then run ingest, the absent job, gallery publishing, the notification
    dispatcher and the web server, until Ctrl-C or SIGTERM."""
    from server.attendance import absent_job_loop
    from server.gallery_publish import publish_loop
    from server.migrations import upgrade
    from server.notify.dispatcher import dispatch_loop
    from server.web_server import serve

    http_overrides(host, port, tls_cert, tls_key)
    settings = _settings()
    engine = _engine(settings)
    upgrade(engine)
    stop = threading.Event()
    # uvicorn handles SIGINT/SIGTERM itself, then hands the signal back to these handlers, so
    # the cleanup below runs instead of the process dying with its workers left behind.
    _until_signalled(stop)
    pool = _ingest_processes(settings, settings.ingest.workers)
    pool.start()
    jobs = [
        threading.Thread(
            target=absent_job_loop, args=(engine, settings.attendance, stop), name="absent-job"
        ),
        threading.Thread(target=publish_loop, args=(engine, stop), name="gallery-publish"),
        threading.Thread(
            target=dispatch_loop, args=(engine, settings.notify, stop), name="notify-dispatcher"
        ),
    ]
    for job in jobs:
        job.start()
    watchdog = threading.Thread(
        target=lambda: _watch(pool, stop) and os.kill(os.getpid(), signal.SIGTERM),
        name="ingest-watchdog",
        daemon=True,
    )
    watchdog.start()
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    try:
        serve(settings.http, level)
    finally:
        stop.set()
        for job in jobs:
            job.join()
        pool.stop()
