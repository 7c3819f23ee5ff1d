"""``gatectl camera test``: will the gate see faces well enough from where its camera is?

Reads frames from the source as the gate would (:mod:`firmware_tools.camera_probe`), reports
the frame rate, the brightness (too dark / overexposed) and every face the installed pack's
detector finds, with its size against the pack's minimum for reliable recognition. Stand where
students will pass while it runs. The report goes to stdout (``--json``: one JSON document),
progress to stderr. Exit codes: 0 all good, 1 a problem was found (source unusable, too dark,
overexposed, no face, a face too small, pack missing), 2 bad arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from firmware_tools.camera_probe import (
    CameraProbe,
    CameraProbeError,
    FaceSize,
    face_sizes,
    probe_camera,
)
from models import default_pack
from models.engine import FaceEngine
from models.packs import PackError, default_models_dir, load_pack

app = typer.Typer(
    help="Gate cameras: check one before the gate relies on it.", no_args_is_help=True
)
console = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_PROBLEM, EXIT_USAGE = 1, 2


def _fail(message: str, code: int) -> typer.Exit:
    console.print(message, markup=False)
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), console=console
    )


def _engine(pack: str, models_dir: Path | None) -> FaceEngine:
    try:
        return FaceEngine(load_pack(pack, models_dir or default_models_dir()), threads=2)
    except PackError as exc:
        raise _fail(
            f"model pack {pack}: {exc}; install it with `gatectl models install {pack}`",
            EXIT_PROBLEM,
        ) from None


def _problems(probe: CameraProbe, faces: list[FaceSize]) -> list[str]:
    """What would stop the gate from recognising people, each with what to do about it."""
    problems = []
    if probe.exposure == "too dark":
        problems.append(
            f"too dark (mean brightness {probe.brightness:.0f}/255): add light at the gate or "
            "raise the camera's exposure"
        )
    elif probe.exposure == "overexposed":
        problems.append(
            f"overexposed (mean brightness {probe.brightness:.0f}/255, "
            f"{probe.clipped_share:.0%} of pixels white): turn the camera away from the "
            "light or lower its exposure"
        )
    if not faces:
        problems.append(
            "no face seen: stand where students pass and look at the camera, then run again"
        )
    elif small := [face for face in faces if face.verdict == "too small"]:
        biggest = max(face.size_px for face in small)
        problems.append(
            f"{len(small)} of {len(faces)} faces are too small (up to {biggest} px, the pack "
            f"needs {small[0].min_px} px): move the camera closer or zoom in"
        )
    return problems


def _report(probe: CameraProbe, faces: list[FaceSize], problems: list[str]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    end = " (the video ended)" if probe.ended else ""
    out.print(
        f"source {probe.source}: {probe.width}×{probe.height}, {probe.fps:g} fps over "
        f"{probe.frames_read} frames{end}",
        markup=False,
    )
    out.print(f"brightness {probe.brightness:.0f}/255: {probe.exposure}", markup=False)
    if faces:
        table = Table(
            "frame", "face height px", "width px", "on detection copy", "score", "verdict"
        )
        for face in faces:
            colour = {"good": "green", "small": "yellow", "too small": "red"}[face.verdict]
            table.add_row(
                str(face.frame),
                str(face.height_px),
                str(face.width_px),
                str(face.detect_px),
                f"{face.score:.2f}",
                f"[{colour}]{face.verdict}[/{colour}] (min {face.min_px})",
            )
        out.print(table)
    for problem in problems:
        out.print(f"✘ {problem}", markup=False)
    if not problems:
        out.print("✔ this camera position is good for recognition", markup=False)


@app.command("test")
def test_camera(
    source: Annotated[
        str,
        typer.Argument(help="Device index (0), /dev/videoN, video file or rtsp:// URL."),
    ],
    frames: Annotated[
        int, typer.Option(min=2, max=10_000, help="Frames to read to measure the frame rate.")
    ] = 30,
    save: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Save the last frame read (.jpg or .png)."),
    ] = None,
    pack: Annotated[
        str, typer.Option(help="Model pack whose detector and minimum face size to use.")
    ] = default_pack.NAME,
    models_dir: Annotated[
        Path | None,
        typer.Option(
            "--models-dir",
            metavar="DIR",
            help="Models directory (default: $CAMPUSGATE_MODELS or ~/.local/share/...).",
        ),
    ] = None,
    detect_max_side: Annotated[
        int,
        typer.Option(
            min=160, max=4096, help="The gate's recognition.detect_max_side (detection copy)."
        ),
    ] = 640,
    min_face_px: Annotated[
        int | None,
        typer.Option(
            min=16,
            max=1024,
            help="Judge faces against this size instead of the pack's minimum (e.g. the "
            "gate's recognition.min_face_px).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.5, help="Give up on the source after this many seconds.")
    ] = 15.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Open a camera, measure its frame rate and brightness, and check face sizes."""
    if save is not None and not (save.parent.is_dir() and cv2.haveImageWriter(str(save))):
        raise _fail(f"--save {save}: use a .jpg or .png name in an existing folder", EXIT_USAGE)
    engine = _engine(pack, models_dir)
    with _progress() as bar:
        reading = bar.add_task("reading frames", total=frames)
        try:
            probe = probe_camera(
                source,
                frames=frames,
                timeout=timeout,
                progress=lambda done: bar.update(reading, completed=done),
            )
        except CameraProbeError as exc:
            raise _fail(str(exc), EXIT_PROBLEM) from None
        looking = bar.add_task("looking for faces", total=len(probe.kept))
        faces = face_sizes(
            engine,
            probe.kept,
            detect_max_side=detect_max_side,
            min_face_px=min_face_px,
            progress=lambda done: bar.update(looking, completed=done),
        )
    if save is not None:
        last = probe.kept[-1].image
        if not cv2.imwrite(str(save), cv2.cvtColor(last, cv2.COLOR_RGB2BGR)):
            raise _fail(f"--save {save}: OpenCV could not write it", EXIT_PROBLEM)
        console.print(f"frame {probe.kept[-1].index} saved to {save}", markup=False)
    problems = _problems(probe, faces)
    if as_json:
        document = {
            **probe.summary(),
            "pack": engine.pack.name,
            "faces": [face.summary() for face in faces],
            "problems": problems,
            "saved_to": str(save) if save else None,
        }
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        _report(probe, faces, problems)
    if problems:
        raise typer.Exit(EXIT_PROBLEM)
