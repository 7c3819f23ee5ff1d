"""Camera: latest-frame hand-off, counted drops, end of file, loss and reconnect with backoff,
on real video files written for each test."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.camera import Camera

FPS = 30.0
WIDTH, HEIGHT = 320, 240
SQUARE = 30


def _square_x(index: int, frames: int) -> int:
    return 10 + index * (WIDTH - SQUARE - 20) // frames


def _write_clip(path: Path, frames: int) -> Path:
    """A clip of a red square moving right with the frame number drawn, written through a
    temporary name so a camera polling ``path`` never opens a half-written file."""
    partial = path.with_name("partial-" + path.name)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for index in range(frames):
        image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        x = _square_x(index, frames)
        cv2.rectangle(image, (x, 150), (x + SQUARE, 150 + SQUARE), (0, 0, 255), -1)  # BGR red
        cv2.putText(image, str(index), (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        writer.write(image)
    writer.release()
    os.replace(partial, path)
    return path


def _assert_shows_its_index(image: np.ndarray, index: int, frames: int) -> None:
    """The frame is RGB and shows the square where the source drew it at ``index``."""
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    red = (image[..., 0] > 150) & (image[..., 1] < 100) & (image[..., 2] < 100)
    columns = np.nonzero(red.any(axis=0))[0]
    assert abs(columns.min() - _square_x(index, frames)) <= 2


@pytest.fixture(scope="module")
def ten_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_clip(tmp_path_factory.mktemp("video") / "ten_seconds.avi", int(10 * FPS))


@pytest.fixture(scope="module")
def one_second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_clip(tmp_path_factory.mktemp("video") / "one_second.avi", int(FPS))


class _States:
    """Records the states a camera reports and lets a test wait for one."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, state: str) -> None:
        with self._cond:
            self.seen.append(state)
            self._cond.notify_all()

    def wait_for(self, state: str, count: int = 1, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.seen.count(state) >= count, timeout)


def _retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [r.delay_s for r in list(caplog.records) if r.getMessage() == "camera retry"]


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_realtime_playback_drops_what_a_slow_consumer_never_took(ten_seconds: Path) -> None:
    states = _States()
    taken = []
    with Camera(str(ten_seconds), on_state=states) as camera:
        last = -1
        while (frame := camera.latest(last, timeout=5.0)) is not None:
            _assert_shows_its_index(frame.image, frame.index, 300)
            taken.append(frame)
            last = frame.index
            time.sleep(0.1)  # a consumer three times slower than the source
        stats = camera.stats
        assert camera.ended
    assert states.seen == ["open", "ended"]
    assert stats.source_fps == pytest.approx(FPS)
    assert stats.frames_in == 300
    assert stats.frames_taken == len(taken)
    assert stats.frames_taken + stats.frames_dropped == stats.frames_in
    assert stats.frames_dropped > 150  # at most one frame per 0.1 s can have been taken
    indices = [f.index for f in taken]
    assert indices == sorted(set(indices))
    # Paced at the file's rate: a frame is never handed out before its time in the clip.
    first = taken[0]
    for frame in taken[1:]:
        assert frame.captured_at - first.captured_at >= (frame.index - first.index) / FPS - 0.01


def test_as_fast_as_possible_delivers_every_frame_in_order(ten_seconds: Path) -> None:
    with Camera(str(ten_seconds), realtime=False) as camera:
        indices = []
        while (frame := camera.latest(indices[-1] if indices else -1, timeout=5.0)) is not None:
            if frame.index % 50 == 0:
                _assert_shows_its_index(frame.image, frame.index, 300)
            indices.append(frame.index)
        stats = camera.stats
    assert indices == list(range(300))
    assert (stats.frames_in, stats.frames_taken, stats.frames_dropped) == (300, 300, 0)


def test_latest_never_returns_a_frame_older_than_one_already_taken(one_second: Path) -> None:
    with Camera(str(one_second)) as camera:
        seen = []
        while (frame := camera.latest(timeout=5.0)) is not None and len(seen) < 200:
            seen.append(frame.index)  # after_index left at -1: the same frame may come again
        assert seen == sorted(seen)
        newer = camera.latest(after_index=seen[-1], timeout=5.0)
        assert newer is None or newer.index > seen[-1]


def test_after_the_end_of_a_file_latest_returns_none(one_second: Path) -> None:
    states = _States()
    with Camera(str(one_second), realtime=False, on_state=states) as camera:
        while camera.latest(timeout=5.0) is not None and not camera.ended:
            pass
        assert states.wait_for("ended")
        assert camera.latest(timeout=0.5) is None
        assert camera.latest(after_index=-1, timeout=0.0) is None


def test_a_file_that_cannot_be_opened_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot open video"):
        Camera(str(tmp_path / "missing.avi"))


def test_a_failing_state_callback_does_not_stop_capture(one_second: Path) -> None:
    def broken(state: str) -> None:
        raise RuntimeError("callback bug")

    with Camera(str(one_second), realtime=False, on_state=broken) as camera:
        assert camera.latest(timeout=5.0) is not None


def test_a_lost_camera_is_retried_with_backoff_and_reconnects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.camera")
    path = tmp_path / "camera.avi"
    states = _States()
    camera = Camera(
        str(path), live=True, reconnect_min_s=0.02, reconnect_max_s=0.1, on_state=states
    )
    try:
        # Not there at start: the camera keeps retrying, waiting longer each time up to the cap.
        assert states.wait_for("lost")
        assert _wait_until(lambda: len(_retry_delays(caplog)) >= 5)
        assert camera.latest(timeout=0.0) is None
        _write_clip(path, int(FPS))
        assert states.wait_for("reconnected")
        first = camera.latest(timeout=5.0)
        assert first is not None

        # Unplugged mid-stream: the source ends and cannot be reopened until it comes back.
        path.unlink()
        assert states.wait_for("lost", count=2)
        _write_clip(path, int(FPS))
        assert states.wait_for("reconnected", count=2)
        later = camera.latest(after_index=first.index, timeout=5.0)
        assert later is not None and later.index > first.index
        assert camera.stats.reconnects >= 2
    finally:
        camera.stop()
    assert states.seen[:4] == ["lost", "reconnected", "lost", "reconnected"]
    assert states.seen[-1] == "stopped"
    delays = _retry_delays(caplog)
    assert delays[:5] == pytest.approx([0.02, 0.04, 0.08, 0.1, 0.1])
    assert max(delays) == pytest.approx(0.1)


def test_a_stream_password_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.camera")
    states = _States()
    with Camera("rtsp://gate:s3cret@127.0.0.1:1/stream", on_state=states) as camera:
        assert states.wait_for("lost")
        assert camera.latest(timeout=0.0) is None
    sources = {r.source for r in caplog.records if hasattr(r, "source")}
    assert sources == {"rtsp://gate:***@127.0.0.1:1/stream"}
