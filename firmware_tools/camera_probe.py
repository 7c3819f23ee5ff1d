"""Probing a gate camera: does it give frames, how fast, how well lit, and are faces big enough.

A technician mounts the camera, stands where students will pass, and wants one answer: will
the gate recognise people from here? The frames are read through :class:`edge.camera.Camera`,
exactly as the gate reads them (same FFmpeg timeouts for RTSP, same one-frame buffer), and
faces are looked for the way the gate's loop does: on a copy scaled down to the gate's
detection size, with boxes mapped back to the full frame, where the pack's quality bar
applies. Faces smaller than the gate would use are still looked for, so that a camera mounted
too far away is reported as "faces too small" rather than "no face".

Only a few evenly spread frames are kept (a 1080p frame is 6 MB and this may run on a Pi);
brightness is measured on every frame read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import cv2
import numpy as np

from edge.camera import Camera, Frame
from models.engine import FaceEngine

DARK_BELOW = 50.0
"""Mean brightness (0-255) under which faces lose the contrast detection and quality need."""
BRIGHT_ABOVE = 200.0
"""Mean brightness over which faces wash out (backlit gate, sun on the lens)."""
CLIPPED_WHITE = 250
MAX_CLIPPED_SHARE = 0.25
"""Share of saturated pixels above which the picture is overexposed whatever its mean."""
SMALLEST_SEARCHED_PX = 12.0
"""Smallest face looked for on the detection copy (about the least MTCNN can find)."""

Exposure = Literal["ok", "too dark", "overexposed"]
FaceVerdict = Literal["good", "small", "too small"]


class CameraProbeError(RuntimeError):
    """The source cannot be opened or gives no frames; the message says which and why."""


@dataclass(frozen=True)
class CameraProbe:
    """What reading ``frames_read`` frames from a source showed.

    ``fps`` is the rate the source delivered frames at (frames counted by the source's own
    index, so frames the probe did not take still count); ``kept`` are the frames spread
    over the run that faces are looked for in (RGB).
    """

    source: str
    width: int
    height: int
    frames_read: int
    seconds: float
    fps: float
    brightness: float
    clipped_share: float
    ended: bool
    kept: list[Frame] = field(repr=False)

    @property
    def exposure(self) -> Exposure:
        if self.brightness < DARK_BELOW:
            return "too dark"
        if self.brightness > BRIGHT_ABOVE or self.clipped_share > MAX_CLIPPED_SHARE:
            return "overexposed"
        return "ok"

    def summary(self) -> dict:
        """The figures as plain JSON-able values (no pixels)."""
        fields = asdict(self)
        del fields["kept"]
        return {**fields, "exposure": self.exposure}


def _luma(image: np.ndarray) -> tuple[float, float]:
    """Mean brightness (0-255) and share of saturated pixels of an RGB image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(grey.mean()), float(np.count_nonzero(grey >= CLIPPED_WHITE)) / grey.size


def probe_camera(
    source: str,
    *,
    frames: int = 30,
    keep: int = 5,
    timeout: float = 10.0,
    progress: Callable[[int], None] | None = None,
) -> CameraProbe:
    """Read ``frames`` frames (fewer if a file ends first) within ``timeout`` seconds.

    Raises :class:`CameraProbeError` when the source cannot be opened or no frame came in
    time. ``progress`` is called with the number of frames read so far.
    """
    if frames < 2:
        raise ValueError("frames must be at least 2 to measure a frame rate")
    try:
        camera = Camera(source, realtime=True, reconnect_min_s=0.5, reconnect_max_s=2.0)
    except OSError:  # only a file is opened at once; a live source is retried below
        raise CameraProbeError(
            f"cannot open {source}: no such file, or not a video OpenCV can read"
        ) from None
    slots = np.linspace(0, frames - 1, max(1, min(keep, frames))).round().astype(int).tolist()
    kept: list[Frame] = []
    brightness: list[tuple[float, float]] = []
    first: Frame | None = None
    last: Frame | None = None
    deadline = time.monotonic() + timeout
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            frame = camera.latest(after_index=last.index if last else -1, timeout=remaining)
            if frame is None:
                break  # a file ended, or the time is up
            first = first or frame
            last = frame
            brightness.append(_luma(frame.image))
            read = frame.index - first.index + 1
            if slots and read - 1 >= slots[0]:
                kept.append(frame)
                while slots and slots[0] <= read - 1:
                    slots.pop(0)
            if progress is not None:
                progress(min(read, frames))
            if read >= frames:
                break
        ended = camera.ended
    finally:
        camera.stop()
    if first is None or last is None:
        raise CameraProbeError(
            f"{source} gave no frame within {timeout:g} s (wrong device or URL, camera busy "
            "or unplugged, or no permission)"
        )
    if kept[-1] is not last:
        kept.append(last)  # the run ended early: look at the last picture too
    span = last.captured_at - first.captured_at
    height, width = last.image.shape[:2]
    levels = np.array(brightness)
    return CameraProbe(
        source=source,
        width=width,
        height=height,
        frames_read=last.index - first.index + 1,
        seconds=round(span, 3),
        fps=round((last.index - first.index) / span, 2) if span > 0 else 0.0,
        brightness=round(float(levels[:, 0].mean()), 1),
        clipped_share=round(float(levels[:, 1].mean()), 4),
        ended=ended,
        kept=kept,
    )


@dataclass(frozen=True)
class FaceSize:
    """One face found in a probe frame, in full-frame pixels."""

    frame: int
    x: int
    y: int
    width_px: int
    height_px: int
    detect_px: int
    """Its size (smaller side) on the gate's detection copy."""
    score: float
    min_px: int
    """The least size (smaller side) the pack recognises reliably at."""

    @property
    def size_px(self) -> int:
        """The smaller side, which is what the pack's quality bar measures."""
        return min(self.width_px, self.height_px)

    @property
    def verdict(self) -> FaceVerdict:
        """Too small below the minimum; small below twice it (where quality stops rising)."""
        if self.size_px < self.min_px:
            return "too small"
        return "small" if self.size_px < 2 * self.min_px else "good"

    def summary(self) -> dict:
        return {**asdict(self), "size_px": self.size_px, "verdict": self.verdict}


def face_sizes(
    engine: FaceEngine,
    frames: list[Frame],
    *,
    detect_max_side: int = 640,
    min_face_px: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[FaceSize]:
    """Every face in ``frames``, found as the gate finds them; judged against ``min_face_px``
    (default: the pack's own minimum)."""
    minimum = min_face_px or engine.pack.manifest.quality.min_face_px
    found: list[FaceSize] = []
    for done, frame in enumerate(frames, start=1):
        image = frame.image
        scale = min(1.0, detect_max_side / max(image.shape[:2]))
        small = (
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1.0
            else image
        )
        detections = engine.detect(small, min_face_size=SMALLEST_SEARCHED_PX)
        for box, score in zip(detections.boxes, detections.scores, strict=True):
            x1, y1, x2, y2 = (box / scale).tolist()
            found.append(
                FaceSize(
                    frame=frame.index,
                    x=round(x1),
                    y=round(y1),
                    width_px=round(x2 - x1),
                    height_px=round(y2 - y1),
                    detect_px=round(min(x2 - x1, y2 - y1) * scale),
                    score=round(float(score), 3),
                    min_px=minimum,
                )
            )
        if progress is not None:
            progress(done)
    return found
