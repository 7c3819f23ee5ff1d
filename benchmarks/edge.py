"""``campusgate bench edge``: the gate loop on a video played as a live camera.

The video plays at its own frame rate; the loop must keep up on this machine's cores. Every
figure the issue asks for is measured in the same run, and the baseline — a naive loop that
detects and embeds every face in every frame — runs on the same video afterwards, so the CPU per
frame of both can be compared.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import psutil

from benchmarks.stats import percentiles_ms
from broker.payloads import Event, utc_now
from edge.camera import Camera
from edge.loop import LoopSettings, Pass, RecognitionLoop
from edge.outbox import Outbox
from models.engine import FaceEngine
from models.gallery import Gallery
from models.images import ImageError, read_image
from models.packs import load_pack


def _build_gallery_bytes(
    pack_name: str, models_dir: Path | None, roots: list[Path]
) -> tuple[bytes, int]:
    """Enrollment in a child process, so the gate's memory is measured without it: decoding
    30-megapixel photos leaves the allocator holding memory a gate would never have used."""
    engine = FaceEngine(load_pack(pack_name, models_dir), threads=1)
    gallery, photos = build_gallery(engine, roots)
    return gallery.to_bytes(half=False), photos


def build_gallery(engine: FaceEngine, roots: list[Path]) -> tuple[Gallery, int]:
    """A gallery of every ``identity/image`` under ``roots``: the largest good face per photo."""
    gallery = Gallery(pack=engine.pack.name, dim=engine.embedding_size, threshold=engine.threshold)
    photos = 0
    for root in roots:
        source = root.resolve().parent.name
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            rows = []
            for path in sorted(folder.iterdir()):
                try:
                    faces = engine.analyse(_bounded(read_image(path)))
                except ImageError:
                    continue
                if faces.embedded.any():
                    sizes = np.where(faces.embedded, faces.quality.size_px, -1)
                    rows.append(faces.embeddings[int(np.argmax(sizes))])
                    photos += 1
            if rows:
                gallery.add(f"{source}:{folder.name}", np.stack(rows))
    return gallery, photos


def _bounded(image: np.ndarray, side: int = 1024) -> np.ndarray:
    scale = side / max(image.shape[:2])
    return (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if scale < 1
        else image
    )


class _Sampler:
    """Samples this process's RSS and CPU time while the loop runs."""

    def __init__(self, period: float = 0.2) -> None:
        self._process = psutil.Process()
        self._period = period
        self._stop = threading.Event()
        self.rss_max = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.rss_max = max(self.rss_max, self._process.memory_info().rss)

    def __enter__(self) -> _Sampler:
        self.cpu0 = sum(self._process.cpu_times()[:2])
        self.wall0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.rss_max = max(self.rss_max, self._process.memory_info().rss)
        self.cpu = sum(self._process.cpu_times()[:2]) - self.cpu0
        self.wall = time.monotonic() - self.wall0


def run_loop(
    video: Path, engine: FaceEngine, gallery: Gallery, settings: LoopSettings, seconds: float | None
) -> dict:
    """The real loop on the video in real time; events go through a real outbox."""
    passes: list[dict] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, Outbox(Path(tmp) / "outbox.db") as outbox:
        camera = Camera(str(video), realtime=True)
        start = time.monotonic()
        fps = camera.stats.source_fps or 30.0

        def emit(item: Pass) -> None:
            event = Event(
                event_id=uuid.uuid4(),
                kind="face",
                ts=utc_now(),
                site="bench",
                device="gate",
                direction=item.direction,
                student_id=_student(item.person_id),
                score=max(0.0, min(1.0, item.score)),
                track_id=item.track_id,
                quality=item.quality,
                model_pack=engine.pack.name,
                gallery_version=gallery.version,
                latency_ms=0.0,
            )
            outbox.put(
                "cg/v1/bench/gate/events", event.model_dump_json().encode(), str(event.event_id)
            )
            latency = time.monotonic() - item.captured_at
            latencies.append(latency)
            passes.append(
                {
                    "person": item.person_id,
                    "score": round(item.score, 4),
                    "first_frame": round((item.first_seen - start) * fps),
                    "last_frame": round((item.captured_at - start) * fps),
                    "latency_ms": round(latency * 1000, 1),
                }
            )

        loop = RecognitionLoop(camera, engine, lambda: gallery, emit, settings)
        stop = threading.Event()
        if seconds:
            threading.Timer(seconds, stop.set).start()
        with _Sampler() as sampler:
            loop.run(stop)
        camera.stop()
        cam = camera.stats
    fps = cam.source_fps or 30.0
    duration = cam.frames_in / fps
    return {
        "frames_in": cam.frames_in,
        "frames_processed": loop.stats.frames_processed,
        "frames_skipped_rate": loop.stats.frames_skipped_rate,
        "frames_skipped_motion": loop.stats.frames_skipped_motion,
        "frames_dropped": cam.frames_dropped,
        "fps_source": round(fps, 2),
        "realtime": bool(sampler.wall <= duration * 1.05 + 1.0),
        "wall_s": round(sampler.wall, 2),
        "video_s": round(duration, 2),
        "events": passes,
        "identities": sorted({p["person"] for p in passes if p["person"]}),
        "unknown_passes": sum(1 for p in passes if p["person"] is None),
        "passes_suppressed_cooldown": loop.stats.passes_suppressed,
        "faces_embedded": loop.stats.faces_embedded,
        "jobs_dropped": loop.stats.jobs_dropped,
        "latency_ms_p50": percentiles_ms(latencies)["p50"] if latencies else None,
        "latency_ms_p95": percentiles_ms(latencies)["p95"] if latencies else None,
        "cpu_cores_avg": round(sampler.cpu / sampler.wall, 3),
        "cpu_ms_per_frame": round(sampler.cpu * 1000 / max(cam.frames_in, 1), 2),
        "rss_mb_max": round(sampler.rss_max / 2**20, 1),
        "stages_ms": {
            k: {"p50": v[0], "p95": v[1]} for k, v in loop.stats.stages.summary_ms().items()
        },
    }


def run_naive(video: Path, engine: FaceEngine, gallery: Gallery, frames: int) -> dict:
    """The baseline: every frame, detect at full resolution and embed every face."""
    capture = cv2.VideoCapture(str(video))
    cpu0 = time.process_time()
    done = 0
    while done < frames:
        ok, bgr = capture.read()
        if not ok:
            break
        faces = engine.analyse(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if faces.embedded.any():
            gallery.search(faces.embeddings[faces.embedded])
        done += 1
    capture.release()
    cpu = time.process_time() - cpu0
    return {"frames": done, "cpu_ms_per_frame": round(cpu * 1000 / max(done, 1), 2)}


def _student(person_id: str | None) -> str | None:
    """Gallery labels of the shared photos (``source:name``) as contract-valid student ids."""
    if person_id is None:
        return None
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in person_id)
    return cleaned.strip("-._")[:64] or None


def run(
    video: Path,
    gallery_roots: list[Path],
    pack_name: str,
    *,
    models_dir: Path | None = None,
    threads: int = 2,
    seconds: float | None = None,
    naive_frames: int = 150,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict:
    """Build the gallery, run the loop on the video, then the naive baseline; return figures."""
    progress("building the gallery")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        data, photos = pool.submit(
            _build_gallery_bytes, pack_name, models_dir, gallery_roots
        ).result()
    gallery = Gallery.from_bytes(data)
    engine = FaceEngine(load_pack(pack_name, models_dir), threads=threads)
    progress(f"gallery: {len(gallery.persons)} identities, {photos} photos; playing {video.name}")
    figures = {
        "pack": pack_name,
        "video": video.name,
        "gallery_identities": len(gallery.persons),
        "gallery_photos": photos,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        **run_loop(video, engine, gallery, LoopSettings(), seconds),
    }
    progress(f"naive baseline on {naive_frames} frames")
    naive = run_naive(video, engine, gallery, naive_frames)
    figures["naive"] = naive
    figures["cpu_per_frame_ratio"] = round(
        naive["cpu_ms_per_frame"] / max(figures["cpu_ms_per_frame"], 1e-9), 2
    )
    figures["peak_rss_mb_process"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return figures
