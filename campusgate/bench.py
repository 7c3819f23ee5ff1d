"""``campusgate bench …``: run a benchmark and print its figures as one JSON object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

PhotoTrees = Annotated[
    list[Path],
    typer.Option(
        exists=True,
        file_okay=False,
        metavar="DIR",
        help="A tree identity/image (repeat for several roots).",
    ),
]
Pack = Annotated[str, typer.Option(help="Model pack.")]
ModelsDir = Annotated[Path | None, typer.Option(metavar="DIR", help="Models directory.")]
Threads = Annotated[int, typer.Option(help="onnxruntime threads (0 = one per core).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print only the JSON object.")]

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


@app.command()
def faces(
    data: PhotoTrees,
    pack: Pack = "dlib-r29-mtcnn",
    models_dir: ModelsDir = None,
    threads: Threads = 0,
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    dlib: Annotated[bool, typer.Option(help="Also run dlib's own stack as the baseline.")] = True,
    as_json: AsJson = False,
) -> None:
    """Verification accuracy and detect/embed/match times of a pack, beside dlib's own stack."""
    from benchmarks.faces import run

    console = Console(stderr=True)
    figures = run(
        data,
        pack,
        models_dir=models_dir,
        threads=threads,
        limit=limit,
        with_dlib=dlib,
        progress=lambda m: console.print(m),
    )
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    table = Table("figure", pack, "dlib" if dlib else "", title="campusgate bench faces")
    theirs = figures.get("dlib", {})
    for key in (
        "faces_found",
        "pairs",
        "threshold",
        "verification_accuracy",
        "tar",
        "far",
        "ms_detect_p50",
        "ms_embed_p50",
        "ms_match_10k_p50",
        "rss_mb",
    ):
        table.add_row(key, str(figures.get(key)), str(theirs.get(key, "")))
    Console().print(table)
    print(json.dumps(figures))


@app.command()
def edge(
    video: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, metavar="FILE", help="Video to play.")
    ],
    gallery: PhotoTrees,
    pack: Pack = "dlib-r29-mtcnn",
    models_dir: ModelsDir = None,
    threads: Threads = 2,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of video.")
    ] = None,
    naive_frames: Annotated[int, typer.Option(help="Frames for the naive baseline.")] = 150,
    as_json: AsJson = False,
) -> None:
    """The gate loop on a video played as a live camera, beside a naive every-frame loop."""
    from benchmarks.edge import run

    console = Console(stderr=True)
    figures = run(
        video,
        gallery,
        pack,
        models_dir=models_dir,
        threads=threads,
        seconds=seconds,
        naive_frames=naive_frames,
        progress=lambda m: console.print(m),
    )
    if not as_json:
        table = Table("figure", "value", title="campusgate bench edge")
        for key in (
            "frames_in",
            "frames_processed",
            "frames_dropped",
            "fps_source",
            "realtime",
            "latency_ms_p50",
            "latency_ms_p95",
            "cpu_cores_avg",
            "rss_mb_max",
            "cpu_per_frame_ratio",
        ):
            table.add_row(key, str(figures[key]))
        console.print(table)
    print(json.dumps(figures, indent=None if not as_json else 2))


@app.command()
def ingest(
    gates: Annotated[int, typer.Option(min=1, max=999, help="Simulated gates.")] = 50,
    events: Annotated[int, typer.Option(min=1, help="Events in total, split over the gates.")] = (
        20_000
    ),
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="PostgreSQL server to create a fresh database on (default: SQLite in a temp dir).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Ingest worker processes.")] = 2,
    repeats: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Share of events a gate publishes twice.")
    ] = 0.01,
    notify: Annotated[
        bool,
        typer.Option(
            "--notify",
            help="Also send every arrival and departure to a parent by Web Push (a local push "
            "service) and report notify_latency_ms_p50/p95.",
        ),
    ] = False,
    students: Annotated[
        int,
        typer.Option(
            min=1,
            max=99_999,
            help="Students in the school; events go to them in turn (arrival, then departure).",
        ),
    ] = 2_000,
    dispatchers: Annotated[
        int, typer.Option(min=1, max=16, help="Dispatcher processes (with --notify).")
    ] = 1,
    rate: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            metavar="EVENTS_PER_S",
            help="Pace the gates to this many events per second in all (default: full speed).",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Gates → Mosquitto (project config, TLS) → ingest workers → database: rate, loss, latency."""
    from benchmarks.ingest import run

    console = Console(stderr=True)
    try:
        figures = run(
            gates,
            events,
            db_url=db,
            workers=workers,
            repeat_share=repeats,
            progress=lambda m: None if as_json else console.print(m),
            notify=notify,
            rate=rate,
            dispatchers=dispatchers,
            students=students,
        )
    except ValueError as exc:  # an unusable --db (not PostgreSQL or SQLite, or not fresh)
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print(json.dumps(figures, indent=2 if as_json else None))


@app.command()
def roll(
    classes: Annotated[int, typer.Option(min=1, max=500, help="Classes in the school.")] = 40,
    students: Annotated[int, typer.Option(min=1, max=100, help="Students per class.")] = 40,
    clients: Annotated[int, typer.Option(min=1, max=500, help="Concurrent teachers.")] = 50,
    interval: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds between one client's requests (0: closed loop)."),
    ] = 2.0,
    seconds: Annotated[float, typer.Option(min=1.0, help="Measured seconds per run.")] = 10.0,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="PostgreSQL server to create a fresh database on (default: SQLite in a temp dir).",
        ),
    ] = None,
    web_workers: Annotated[
        int, typer.Option(min=1, max=16, help="Web server processes (http.workers).")
    ] = 1,
    streams: Annotated[
        int,
        typer.Option(
            min=0,
            max=500,
            help="Live-roll pages (SSE) held open through every run, plus an idle run.",
        ),
    ] = 0,
    as_json: AsJson = False,
) -> None:
    """The class roll under many teachers at once over HTTP, beside saturation and 1 client."""
    from benchmarks.roll import run

    console = Console(stderr=True)
    try:
        figures = run(
            classes,
            students,
            clients,
            interval=interval,
            seconds=seconds,
            db_url=db,
            workers=web_workers,
            streams=streams,
            progress=lambda m: None if as_json else console.print(m),
        )
    except ValueError as exc:  # an unusable --db (not PostgreSQL or SQLite, or not fresh)
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print(json.dumps(figures, indent=2 if as_json else None))
