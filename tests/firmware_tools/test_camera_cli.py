"""``gatectl camera test`` on real video files: a student walking up (faces measured), the same
walk too far away (faces too small), a black picture (too dark, no face) and sources that
cannot be opened."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.walk_video import make_walk_video
from firmware_tools.cli import app
from models.images import read_image

GATECTL = Path(sys.executable).parent / "gatectl"
WALKER = "face_recognition/by_identity/obama/obama.jpg"
FPS = 15.0


def camera_test(source: str | Path, default_pack, *extra: str) -> subprocess.CompletedProcess:
    args = [
        str(GATECTL),
        "camera",
        "test",
        str(source),
        "--models-dir",
        str(default_pack.root.parent),
    ]
    return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def walker(faces_dir: Path, engine) -> tuple[np.ndarray, tuple[float, ...]]:
    photo = read_image(faces_dir / WALKER)
    return photo, tuple(engine.detect(photo).boxes[0])


def test_a_walk_up_reports_every_face_size_against_the_pack(
    walker, default_pack, tmp_path: Path
) -> None:
    video = make_walk_video(*walker, tmp_path / "walk.avi", seconds=2.0, fps=FPS)
    saved = tmp_path / "frame.png"
    done = camera_test(video, default_pack, "--json", "--save", str(saved))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["width"], report["height"], report["frames_read"]) == (640, 480, 30)
    assert 0 < report["fps"] <= FPS + 1  # paced like a camera: never faster than the file's rate
    assert report["exposure"] == "ok" and report["problems"] == []
    faces = report["faces"]
    assert len(faces) >= 3
    minimum = default_pack.manifest.quality.min_face_px
    assert all(face["min_px"] == minimum and face["verdict"] == "good" for face in faces)
    # the student comes closer: the face grows from the first frame looked at to the last
    assert faces[-1]["height_px"] > faces[0]["height_px"] >= 2 * minimum
    assert cv2.imread(str(saved)).shape == (480, 640, 3)


def test_faces_too_far_away_are_reported_too_small(walker, default_pack, tmp_path: Path) -> None:
    video = make_walk_video(*walker, tmp_path / "far.avi", seconds=1.0, fps=FPS, face_px=(24, 28))
    done = camera_test(video, default_pack, "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["faces"] and all(f["verdict"] == "too small" for f in report["faces"])
    assert any("too small" in problem for problem in report["problems"])


def test_a_black_picture_is_too_dark_and_shows_no_face(default_pack, tmp_path: Path) -> None:
    video = tmp_path / "black.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 480))
    for _ in range(20):
        writer.write(np.zeros((480, 640, 3), np.uint8))
    writer.release()
    done = camera_test(video, default_pack, "--frames", "20")
    assert done.returncode == 1, done.stderr
    assert "brightness 0/255: too dark" in done.stdout
    assert "✘ too dark" in done.stdout and "✘ no face seen" in done.stdout


def test_a_source_that_cannot_be_opened_is_a_clear_error(default_pack, tmp_path: Path) -> None:
    missing = camera_test(tmp_path / "missing.mp4", default_pack)
    assert missing.returncode == 1 and "cannot open" in missing.stderr
    assert missing.stdout == ""
    silent = camera_test("/dev/video-nothing-here", default_pack, "--timeout", "1")
    assert silent.returncode == 1 and "gave no frame within 1 s" in silent.stderr


def test_bad_arguments_exit_2_before_the_camera_is_opened(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_name = runner.invoke(app, ["camera", "test", "0", "--save", str(tmp_path / "f.xyz")])
    assert bad_name.exit_code == 2 and "use a .jpg or .png name" in bad_name.stderr
    assert runner.invoke(app, ["camera", "test", "0", "--frames", "1"]).exit_code == 2


def test_a_missing_pack_says_how_to_install_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["camera", "test", "0", "--models-dir", str(tmp_path), "--pack", "buffalo_l"]
    )
    assert result.exit_code == 1 and "gatectl models install buffalo_l" in result.stderr
