"""Camera capture that always hands the loop the newest frame.

A gate must react to what is in front of it now, so a capture thread reads frames continuously
and keeps only the latest one; a frame the loop never took is counted as dropped rather than
queued, and work never piles up behind a slow stage. Live sources (a device, a V4L2 path, an
RTSP/HTTP URL) are reopened with exponential backoff when they fail, and the thread survives
anything the source does. A video file plays at its own frame rate like a live camera
(``realtime=True``) or, for benchmarks, as fast as the consumer takes frames (``realtime=False``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

log = logging.getLogger(__name__)

CameraState = Literal["opening", "open", "lost", "reconnected", "ended", "stopped"]

# fps_in is measured over the frames of the last few seconds, so a stall shows within that time.
_FPS_WINDOW_S = 2.0
# Network streams: give up on an open or a read after this long, so a dead RTSP camera is noticed
# (FFmpeg's own default waits 30 s) and the thread can still be stopped promptly.
_STREAM_TIMEOUT_MS = 5000
# Files whose container does not state a frame rate are paced as a typical camera.
_FALLBACK_FPS = 30.0


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    ``index`` counts the frames read from the source since the camera started (it keeps rising
    across reconnects, so it orders frames); ``captured_at`` is ``time.monotonic()`` when the
    frame became available, the start of every latency figure; ``image`` is RGB uint8 H×W×3.
    """

    index: int
    captured_at: float
    wall_time: float
    image: np.ndarray


@dataclass(frozen=True, slots=True)
class CameraStats:
    """Counters since start: every frame read is eventually either taken or dropped."""

    frames_in: int
    frames_taken: int
    frames_dropped: int
    reconnects: int
    fps_in: float
    source_fps: float


@dataclass(slots=True)
class _Slot:
    index: int
    captured_at: float
    wall_time: float
    bgr: np.ndarray
    taken: bool = False


class Camera:
    """A capture thread over one source, started at construction; ``stop()`` ends it.

    ``source`` is a device index (or its digits), a ``/dev/video*`` path, a URL (``rtsp://``,
    ``http://``…) or a video file. Devices and URLs are live: a failed open or read reports
    ``"lost"``, retries with backoff from ``reconnect_min_s`` doubling to ``reconnect_max_s``,
    and reports ``"reconnected"`` once frames flow again. A file ends with ``"ended"``; pass
    ``live=True`` to treat a file as a camera instead (a missing file is retried, the end of the
    file is a loss and playback starts over), which is how camera loss is rehearsed without a
    camera. ``realtime`` only concerns files (a live source sets its own pace).

    ``on_state`` is called from the capture thread with each new state; keep it quick.
    """

    def __init__(
        self,
        source: str | int,
        *,
        realtime: bool = True,
        live: bool | None = None,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 10.0,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        self._source = source
        self._name = _redacted(source)
        self._is_file = (
            isinstance(source, str) and "://" not in source and not source.startswith("/dev/")
        )
        self._live = not self._is_file if live is None else live
        self._realtime = realtime
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._on_state = on_state

        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._slot: _Slot | None = None
        self._state: CameraState = "opening"
        self._frames_in = 0
        self._frames_taken = 0
        self._frames_dropped = 0
        self._reconnects = 0
        self._arrivals: deque[float] = deque(maxlen=1024)
        self._source_fps = 0.0

        cap = None
        if not self._live:
            # A file that cannot be read is a mistake in the command line: fail at once.
            cap = self._open()
            if cap is None:
                raise OSError(f"cannot open video {source!r}")
        self._thread = threading.Thread(target=self._run, args=(cap,), name="camera", daemon=True)
        self._thread.start()

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def ended(self) -> bool:
        """True once a file source has played to its end (``latest`` then returns None)."""
        return self._state == "ended"

    @property
    def stats(self) -> CameraStats:
        with self._cond:
            now = time.monotonic()
            recent = [t for t in self._arrivals if t >= now - _FPS_WINDOW_S]
            span = recent[-1] - recent[0] if len(recent) >= 2 else 0.0
            return CameraStats(
                frames_in=self._frames_in,
                frames_taken=self._frames_taken,
                frames_dropped=self._frames_dropped,
                reconnects=self._reconnects,
                fps_in=(len(recent) - 1) / span if span > 0 else 0.0,
                source_fps=self._source_fps,
            )

    def latest(self, after_index: int = -1, timeout: float = 1.0) -> Frame | None:
        """The newest frame with an index above ``after_index``, waiting up to ``timeout``
        seconds for one; None on timeout, after the end of a file, or once stopped.

        Never returns a frame older than one already returned. Colour conversion happens here,
        so only frames the loop actually uses pay for it.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                slot = self._slot
                if slot is not None and slot.index > after_index:
                    break
                remaining = deadline - time.monotonic()
                if self._state in ("ended", "stopped") or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not slot.taken:
                slot.taken = True
                self._frames_taken += 1
                self._cond.notify_all()  # an as-fast-as-possible reader waits for this
        image = cv2.cvtColor(slot.bgr, cv2.COLOR_BGR2RGB)
        return Frame(slot.index, slot.captured_at, slot.wall_time, image)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the capture thread and wait for it (a blocked network read ends within
        the stream timeout)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("camera thread did not stop", extra={"source": self._name})

    def _run(self, cap: cv2.VideoCapture | None) -> None:
        delay = self._reconnect_min_s
        fresh = cap is not None
        opened_at, read_since_open, index = 0.0, 0, 0
        try:
            while not self._stopping.is_set():
                if cap is None:
                    cap = self._open()
                    if cap is None:
                        delay = self._back_off(delay)
                        continue
                    fresh = True
                if fresh:
                    self._set_state("open" if self._state == "opening" else "reconnected")
                    opened_at, read_since_open, fresh = time.monotonic(), 0, False
                ok, bgr = cap.read()
                if not ok:
                    cap.release()
                    cap = None
                    if not self._live:
                        self._end(opened_at + read_since_open / self._pace_fps())
                        return
                    delay = self._back_off(delay)
                    continue
                if read_since_open == 0:
                    # Only a source that delivers again earns a quick retry next time; one that
                    # opens but never reads keeps backing off.
                    delay = self._reconnect_min_s
                if self._is_file and self._realtime:
                    due = opened_at + read_since_open / self._pace_fps()
                    self._stopping.wait(due - time.monotonic())
                self._publish(index, bgr)
                index += 1
                read_since_open += 1
        except Exception:
            # The gate must keep running; a capture bug is logged and ends capture cleanly.
            log.exception("camera thread failed", extra={"source": self._name})
        finally:
            if cap is not None:
                cap.release()
            self._discard_pending()
            if self._state != "ended":
                self._set_state("stopped")

    def _open(self) -> cv2.VideoCapture | None:
        if isinstance(self._source, str) and "://" in self._source:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                _STREAM_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                _STREAM_TIMEOUT_MS,
            ]
            cap = cv2.VideoCapture(self._source, cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(self._source)
        if not cap.isOpened():
            cap.release()
            return None
        if not self._is_file:
            # Ask the driver to keep one buffer too, or it hands out a stale frame first.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._source_fps = float(fps) if math.isfinite(fps) and fps > 0 else 0.0
        return cap

    def _pace_fps(self) -> float:
        return self._source_fps or _FALLBACK_FPS

    def _back_off(self, delay: float) -> float:
        """Report the loss, wait ``delay`` (or until stopped) and return the next delay."""
        if self._state != "lost":
            self._set_state("lost")
        log.debug("camera retry", extra={"source": self._name, "delay_s": delay})
        self._stopping.wait(delay)
        return min(delay * 2.0, self._reconnect_max_s)

    def _publish(self, index: int, bgr: np.ndarray) -> None:
        with self._cond:
            if self._is_file and not self._realtime:
                while self._slot is not None and not self._slot.taken:
                    if self._stopping.is_set():
                        return
                    self._cond.wait()
            if self._slot is not None and not self._slot.taken:
                self._frames_dropped += 1
            captured_at = time.monotonic()
            self._slot = _Slot(index, captured_at, time.time(), bgr)
            self._frames_in += 1
            self._arrivals.append(captured_at)
            self._cond.notify_all()

    def _end(self, next_due: float) -> None:
        """End of a file: the last frame stays available as long as any other frame would
        (until the next one was due, or until taken when not real time), then the camera ends."""
        if self._realtime:
            self._stopping.wait(next_due - time.monotonic())
        else:
            with self._cond:
                while self._slot is not None and not self._slot.taken:
                    if self._stopping.is_set():
                        break
                    self._cond.wait()
        self._discard_pending()
        self._set_state("ended")

    def _discard_pending(self) -> None:
        with self._cond:
            if self._slot is not None and not self._slot.taken:
                self._frames_dropped += 1
            self._slot = None
            self._cond.notify_all()

    def _set_state(self, state: CameraState) -> None:
        with self._cond:
            self._state = state
            if state == "reconnected":
                self._reconnects += 1
            self._cond.notify_all()
        level = logging.WARNING if state == "lost" else logging.INFO
        log.log(level, "camera %s", state, extra={"source": self._name, "state": state})
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("camera state callback failed", extra={"source": self._name})


def _redacted(source: str | int) -> str:
    """The source as it may appear in logs: a URL's password is replaced by ***."""
    if not isinstance(source, str) or "://" not in source:
        return str(source)
    parts = urlsplit(source)
    if parts.password is None:
        return source
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
