"""The gate's inference loop, the optimised core: camera → motion → detect → track → recognise.

Three threads so that no stage waits on another when it needn't: the camera thread keeps only
the newest frame; this loop's thread gates on motion, detects on a downscaled copy at a bounded
rate and tracks; a recognition thread aligns and embeds the few faces worth it, in batches, and
votes. Work never piles up: a frame the loop was too busy to take is dropped by the camera and
counted, and a face job finding the recogniser busy waits in a queue of two, else is dropped and
counted. Each person yields one event per pass, then a per-student cooldown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from edge.feedback import Feedback, NoFeedback
from edge.stages import StageTimes
from edge.votes import Decision, TrackVotes, Vote, VotePolicy, add_vote, final_decision
from models.engine import FaceEngine
from models.gallery import Gallery
from models.quality import head_pose, sharpness

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """What the loop needs to know; the recognition fields can change live (server config)."""

    detect_max_side: int = 640
    detect_fps: float = 10.0
    min_face_px: int = 80
    max_embeds_per_track: int = 4
    confident_margin: float = 0.03
    cooldown_s: float = 120.0
    direction: str = "in"
    crossing_line: tuple[float, float, float, float] | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Pass:
    """One person's pass through the gate, as the loop reports it."""

    track_id: int
    person_id: str | None
    score: float
    quality: float
    captured_at: float
    wall_time: float
    direction: str
    first_seen: float


@dataclass(slots=True)
class _FaceJob:
    track_id: int
    image: np.ndarray
    landmarks: np.ndarray
    size_px: float
    detector_score: float
    captured_at: float
    wall_time: float


@dataclass
class LoopStats:
    """Counters the telemetry reports."""

    frames_processed: int = 0
    frames_skipped_motion: int = 0
    frames_skipped_rate: int = 0
    jobs_dropped: int = 0
    faces_embedded: int = 0
    faces_refused: int = 0
    passes: int = 0
    passes_suppressed: int = 0
    stages: StageTimes = field(default_factory=StageTimes)


class RecognitionLoop:
    """Runs the loop over frames from ``camera`` and calls ``emit`` once per decided pass.

    ``camera`` gives ``latest(after_index, timeout)`` frames (see :mod:`edge.camera`);
    ``gallery`` returns the current gallery (it may be swapped at any time) or None.
    """

    def __init__(
        self,
        camera,
        engine: FaceEngine,
        gallery: Callable[[], Gallery | None],
        emit: Callable[[Pass], None],
        settings: LoopSettings = LoopSettings(),
        *,
        tracker=None,
        motion=None,
        feedback: Feedback | None = None,
    ) -> None:
        from edge.motion import MotionGate
        from edge.tracker import Tracker

        self.camera = camera
        self.engine = engine
        self.gallery = gallery
        self.emit = emit
        self.settings = settings
        self.tracker = tracker or Tracker()
        self.motion = motion or MotionGate()
        self.feedback = feedback or NoFeedback()
        self.stats = LoopStats()
        self._states: dict[int, TrackVotes] = {}
        self._last_pass: dict[str, float] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue[_FaceJob | None] = queue.Queue(maxsize=2)
        self._frame_shape: tuple[int, int] = (0, 0)

    def apply(self, settings: LoopSettings) -> None:
        """Adopt new settings (from the server's config) without stopping."""
        self.settings = settings

    # --- the detect/track thread ---------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Process frames until ``stop`` is set or the camera ends; blocks the calling thread."""
        worker = threading.Thread(target=self._recognise, name="recognise", daemon=True)
        worker.start()
        last_index, next_detect = -1, 0.0
        try:
            while not stop.is_set():
                frame = self.camera.latest(last_index, timeout=0.5)
                if frame is None:
                    if getattr(self.camera, "ended", False):
                        break
                    continue
                last_index = frame.index
                if frame.captured_at < next_detect:
                    self.stats.frames_skipped_rate += 1
                    continue
                next_detect = frame.captured_at + 1.0 / self.settings.detect_fps
                self._process(frame)
        finally:
            self._finish_all()
            self._jobs.put(None)
            worker.join(timeout=10)

    def _process(self, frame) -> None:
        stages, settings = self.stats.stages, self.settings
        image = frame.image
        self._frame_shape = image.shape[:2]
        with stages.time("motion"):
            moved = self.motion.moved(image)
        if not moved and not self.tracker.tracks:
            self.stats.frames_skipped_motion += 1
            return
        self.stats.frames_processed += 1
        scale = min(1.0, settings.detect_max_side / max(image.shape[:2]))
        small = (
            cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1.0
            else image
        )
        with stages.time("detect"):
            found = self.engine.detect(small, min_face_size=max(12.0, settings.min_face_px * scale))
        boxes, landmarks = found.boxes / scale, found.landmarks / scale
        with stages.time("track"):
            update = self.tracker.update(boxes, frame.captured_at)
        for ended in update.ended:
            self._finish(ended, frame.captured_at, frame.wall_time)
        self._offer_faces(frame, update.assignment, boxes, found.scores, landmarks)

    def _offer_faces(self, frame, assignment, boxes, scores, landmarks) -> None:
        """Queue the faces worth embedding: per track, the best so far, while undecided."""
        settings = self.settings
        sizes = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        if not len(sizes):
            return
        yaw, pitch = head_pose(landmarks)
        frontal = np.clip(np.cos(np.radians(yaw)) * np.cos(np.radians(pitch)), 0, 1)
        goodness = np.minimum(sizes / (2.0 * settings.min_face_px), 1.0) * scores * frontal
        for i, track_id in enumerate(assignment):
            if sizes[i] < settings.min_face_px:
                continue
            with self._lock:
                state = self._states.get(int(track_id))
                if state is None:
                    state = TrackVotes(int(track_id), first_seen=frame.captured_at)
                    self._states[int(track_id)] = state
                if not state.wants(float(goodness[i]), settings.max_embeds_per_track):
                    continue
                state.in_flight = True
                state.best_quality = max(state.best_quality, float(goodness[i]))
            job = _FaceJob(
                int(track_id),
                frame.image,
                landmarks[i],
                float(sizes[i]),
                float(scores[i]),
                frame.captured_at,
                frame.wall_time,
            )
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                self.stats.jobs_dropped += 1
                with self._lock:
                    state.in_flight = False

    # --- the recognition thread ----------------------------------------------------------------
    def _recognise(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < 4:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                batch.append(more)
            try:
                self._embed_and_vote(batch)
            except Exception:  # a bad frame must not stop recognition for the day
                log.exception("recognition failed", extra={"faces": len(batch)})
                with self._lock:
                    for j in batch:
                        if j.track_id in self._states:
                            self._states[j.track_id].in_flight = False

    def _embed_and_vote(self, batch: list[_FaceJob]) -> None:
        stages, engine = self.stats.stages, self.engine
        with stages.time("align"):
            chips = np.stack([engine.align(j.image, j.landmarks[None])[0] for j in batch])
        spec = engine.pack.manifest.quality
        blur = sharpness(chips)
        keep = [i for i, j in enumerate(batch) if blur[i] >= spec.min_sharpness]
        gallery = self.gallery()
        matches = None
        if keep and gallery is not None:
            with stages.time("embed"):
                embeddings = engine.embed(chips[keep])
            with stages.time("match"):
                matches = gallery.search(embeddings, threshold=self._threshold())
        self.stats.faces_embedded += len(keep) if matches is not None else 0
        self.stats.faces_refused += len(batch) - len(keep)
        policy = VotePolicy(
            self._threshold(),
            self.settings.confident_margin,
            max_tries=self.settings.max_embeds_per_track,
        )
        decided: list[tuple[TrackVotes, Decision]] = []
        with self._lock:
            for position, i in enumerate(keep):
                job = batch[i]
                state = self._states.get(job.track_id)
                if state is None or matches is None:
                    continue
                match = matches[position]
                quality = min(1.0, job.size_px / (2.0 * self.settings.min_face_px))
                vote = Vote(
                    match.person_id,
                    match.score,
                    match.runner_up_score,
                    quality,
                    job.captured_at,
                    job.wall_time,
                )
                decision = add_vote(state, vote, policy)
                if decision is not None:
                    decided.append((state, decision))
            for job in batch:
                if job.track_id in self._states:
                    self._states[job.track_id].in_flight = False
        if self.settings.direction != "line":
            for state, decision in decided:
                self._report(state, decision, self.settings.direction)

    def _threshold(self) -> float:
        """The server's or the file's threshold, else the pack's 1:N identification one."""
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.engine.identify_threshold

    # --- ending passes -------------------------------------------------------------------------
    def _finish(self, track, captured_at: float, wall_time: float) -> None:
        """A track left the frame: report what it was, if not yet reported.

        A decision taken only now was decided by the frame that ended the track, so its latency
        counts from that frame's capture.
        """
        with self._lock:
            state = self._states.pop(track.id, None)
        if state is None:
            return
        settings = self.settings
        direction = settings.direction
        if direction == "line":
            height, width = self._frame_shape
            x1, y1, x2, y2 = settings.crossing_line or (0, 0, 0, 0)
            direction = track.crossed((x1 * width, y1 * height, x2 * width, y2 * height))
            if direction is None:
                return  # came and went without crossing: not a pass
        gallery = self.gallery()
        decision = state.decision
        if decision is None and gallery is not None:
            policy = VotePolicy(
                self._threshold(),
                settings.confident_margin,
                max_tries=settings.max_embeds_per_track,
            )
            decision = final_decision(state, policy)
            if decision is not None:
                decision = replace(decision, captured_at=captured_at, wall_time=wall_time)
                self._report(state, decision, direction)
        elif decision is not None and settings.direction == "line":
            decision = replace(decision, captured_at=captured_at, wall_time=wall_time)
            self._report(state, decision, direction)

    def _finish_all(self) -> None:
        now = time.monotonic()
        for track in self.tracker.finish():
            self._finish(track, now, time.time())

    def _report(self, state: TrackVotes, decision: Decision, direction: str) -> None:
        """Emit the pass unless the same student passed within the cooldown."""
        if decision.person_id is not None:
            with self._lock:
                last = self._last_pass.get(decision.person_id)
                if last is not None and decision.captured_at - last < self.settings.cooldown_s:
                    self.stats.passes_suppressed += 1
                    return
                self._last_pass[decision.person_id] = decision.captured_at
        self.stats.passes += 1
        if decision.person_id is None:
            self.feedback.unknown()
        else:
            self.feedback.recognised(decision.person_id)
        self.emit(
            Pass(
                state.track_id,
                decision.person_id,
                decision.score,
                decision.quality,
                decision.captured_at,
                decision.wall_time,
                direction,
                state.first_seen,
            )
        )
