"""The loop on walk videos: one event per pass, the cooldown, and direction from a line."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from benchmarks.walk_video import make_walk_video
from edge.camera import Camera
from edge.loop import LoopSettings, Pass, RecognitionLoop
from models.engine import FaceEngine
from models.gallery import Gallery
from models.images import read_image

WALKER = "face_recognition/by_identity/biden/biden.jpg"
ENROLLED = ["face_recognition/by_identity/biden/biden2.jpg"]


@pytest.fixture(scope="module")
def gallery(engine: FaceEngine, faces_dir: Path) -> Gallery:
    gallery = Gallery(pack=engine.pack.name, dim=engine.embedding_size, threshold=0.9)
    faces = [engine.analyse(read_image(faces_dir / p)) for p in ENROLLED]
    gallery.add("biden", np.stack([f.embeddings[0] for f in faces]))
    return gallery


def _walks(engine, faces_dir, path: Path, **kwargs) -> Path:
    photo = read_image(faces_dir / WALKER)
    return make_walk_video(photo, tuple(engine.detect(photo).boxes[0]), path, seconds=2.5, **kwargs)


def _run(video: Path, engine, gallery, settings: LoopSettings) -> list[Pass]:
    passes: list[Pass] = []
    camera = Camera(str(video), realtime=True)  # played as a live camera, as at a gate
    loop = RecognitionLoop(camera, engine, lambda: gallery, passes.append, settings)
    loop.run(threading.Event())
    camera.stop()
    return passes


def test_each_pass_is_one_event_and_the_cooldown_holds_repeats(
    engine, gallery, faces_dir, tmp_path
) -> None:
    video = _walks(engine, faces_dir, tmp_path / "twice.avi", passes=2)
    without = _run(video, engine, gallery, LoopSettings(min_face_px=60, cooldown_s=0))
    assert [p.person_id for p in without] == ["biden", "biden"]
    with_cooldown = _run(video, engine, gallery, LoopSettings(min_face_px=60, cooldown_s=600))
    assert [p.person_id for p in with_cooldown] == ["biden"]


def test_direction_comes_from_crossing_the_line(engine, gallery, faces_dir, tmp_path) -> None:
    line = LoopSettings(min_face_px=60, direction="line", crossing_line=(0.5, 1.0, 0.5, 0.0))
    rightwards = _run(_walks(engine, faces_dir, tmp_path / "r.avi"), engine, gallery, line)
    leftwards = _run(
        _walks(engine, faces_dir, tmp_path / "l.avi", leftwards=True), engine, gallery, line
    )
    # The line runs up the middle of the frame: walking right crosses it from its left side.
    assert [(p.person_id, p.direction) for p in rightwards] == [("biden", "in")]
    assert [(p.person_id, p.direction) for p in leftwards] == [("biden", "out")]


def test_someone_not_enrolled_is_reported_unknown(engine, faces_dir, tmp_path) -> None:
    stranger = Gallery(pack=engine.pack.name, dim=engine.embedding_size, threshold=0.9)
    rng = np.random.default_rng(0)
    stranger.add("nobody", rng.standard_normal((1, engine.embedding_size)))
    passes = _run(
        _walks(engine, faces_dir, tmp_path / "s.avi"),
        engine,
        stranger,
        LoopSettings(min_face_px=60),
    )
    assert [p.person_id for p in passes] == [None]
