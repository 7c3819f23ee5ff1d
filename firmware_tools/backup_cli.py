"""``gatectl backup`` and ``gatectl restore``: the school server's database, saved and put back.

``backup`` asks the running server for a consistent copy (``POST /api/v1/admin/backup``, an
admin's token) and streams it to a file, never over an existing one; the file is the same as
``campusgate server backup`` writes.

``restore`` is not done over HTTP, on purpose. It replaces every row of the database, under
the server's own connections and ingest workers, so the server must be stopped first (which
a server cannot do for its own restore); and a stolen admin token must not be enough to wipe
a school's records from afar. So ``restore`` runs on the server host, with the server
stopped, and performs ``campusgate server restore`` there: against the database the
``CAMPUSGATE_SERVER__…`` settings name, with its checks (a file that is not a campusgate
backup, or from a newer schema, is refused and changes nothing) and its migration of an older
backup to the current schema. Needing a shell on that host is the guard; ``--yes`` is required
so a script cannot restore by accident.

Exit codes: 0 done, 1 failed (the server or the restore refused, nothing changed), 2 bad
arguments.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from firmware_tools.enroll_cli import AdminToken
from firmware_tools.server_api import ApiError
from firmware_tools.server_options import AsJson, ServerCa, ServerUrl, server_api
from firmware_tools.server_transfer import download

console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FAILED, EXIT_USAGE = 1, 2


def _fail(message: str, code: int) -> typer.Exit:
    console.print(message, markup=False)
    return typer.Exit(code)


def backup(
    out: Annotated[
        Path, typer.Option(metavar="FILE", help="Where to write the backup (new file).")
    ],
    server: ServerUrl,
    token: AdminToken,
    server_ca: ServerCa = None,
    as_json: AsJson = False,
) -> None:
    """Download a consistent backup of the server's database (safe while it runs)."""
    if out.exists():
        raise _fail(f"{out} exists; choose a new file (a backup never overwrites one)", EXIT_USAGE)
    if not out.parent.is_dir():
        raise _fail(f"{out}: the folder {out.parent} does not exist", EXIT_USAGE)
    api = server_api(server, token, server_ca)
    columns = (TextColumn("backup"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("backup", total=None)
            sha256 = download(
                api,
                "/admin/backup",
                out,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    except ApiError as exc:
        raise _fail(f"error: {exc}", EXIT_FAILED) from None
    except OSError as exc:
        raise _fail(f"{out}: {exc.strerror or exc}", EXIT_FAILED) from None
    size = out.stat().st_size
    if as_json:
        print(json.dumps({"file": str(out), "bytes": size, "sha256": sha256}))
    else:
        console.print(f"backup written to {out} ({size:,} bytes, sha256 {sha256})", markup=False)


def restore(
    source: Annotated[Path, typer.Argument(metavar="FILE", help="A file made by backup.")],
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Yes, replace everything in the server's database."),
    ] = False,
) -> None:
    """On the server host, with the server stopped: replace the database's contents with a
    backup (the database the CAMPUSGATE_SERVER__ settings name)."""
    if not source.is_file():
        raise _fail(f"{source} is not a file", EXIT_USAGE)
    if not yes:
        raise _fail(
            "restore replaces every row of the server's database with the backup's: stop the "
            "server, then run again with --yes",
            EXIT_USAGE,
        )
    command = [sys.executable, "-m", "campusgate", "server", "restore", str(source), "--yes"]
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise typer.Exit(EXIT_USAGE if done.returncode == EXIT_USAGE else EXIT_FAILED)
