"""``campusgate bench faces``: accuracy and speed of a model pack against dlib's own stack.

Both stacks see the same decoded images in the same run. Ours: the pack's detector, alignment
and ONNX recogniser. dlib's: HOG detector, 5-point shape predictor and its ResNet through
``dlib`` (dev dependency ``dlib-bin``). Verification is scored on the images where *both* stacks
found a face, over every same-identity pair and every different-identity pair, at each stack's
own published threshold (no tuning on these photos).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from benchmarks.stats import peak_rss_mb, percentiles_ms
from models.engine import FaceEngine
from models.gallery import Gallery
from models.images import ImageError, read_image
from models.packs import load_pack

DLIB_THRESHOLD = 0.6  # dlib's documented euclidean distance for "same person"
FRAME = (640, 480)
FRAME_MIN_FACE = 40
ACCURACY_MAX_SIDE = 1024
SMALL_IMAGE = 300  # tight crops get a border so that detectors see the face's surroundings


@dataclass
class StackResult:
    """What one stack produced on the whole set: embeddings by photo index, and timings."""

    embeddings: dict[int, np.ndarray] = field(default_factory=dict)
    detect_s: list[float] = field(default_factory=list)
    embed_s: list[float] = field(default_factory=list)


def collect(roots: Iterable[Path]) -> list[tuple[str, Path]]:
    """``(identity, path)`` for every file under ``root/identity/``; identities are prefixed
    with the root's parent folder name so that two sources never share a person."""
    items = []
    for root in roots:
        source = root.resolve().parent.name
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                items.append((f"{source}:{folder.name}", path))
    return items


def for_accuracy(image: np.ndarray) -> np.ndarray:
    """The photo as both stacks see it for verification: huge ones shrunk, tiny ones bordered."""
    height, width = image.shape[:2]
    if max(height, width) > ACCURACY_MAX_SIDE:
        scale = ACCURACY_MAX_SIDE / max(height, width)
        image = cv2.resize(
            image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
    if max(height, width) < SMALL_IMAGE:
        pad = max(height, width) // 2
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return image


def as_frame(image: np.ndarray) -> np.ndarray:
    """The photo letterboxed into a 640×480 camera frame, for detection timing."""
    height, width = image.shape[:2]
    scale = min(FRAME[0] / width, FRAME[1] / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    frame = np.zeros((FRAME[1], FRAME[0], 3), np.uint8)
    frame[: size[1], : size[0]] = resized
    return frame


def _largest(boxes: np.ndarray) -> int:
    return int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))


class OurStack:
    """The pack under test: detection timed on the frame, align+embed on the photo's face."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine
        self.result = StackResult()

    def measure(self, index: int, photo: np.ndarray, frame: np.ndarray) -> None:
        engine, result = self.engine, self.result
        t0 = time.perf_counter()
        engine.detect(frame, min_face_size=FRAME_MIN_FACE)
        result.detect_s.append(time.perf_counter() - t0)
        found = engine.detect(photo, min_face_size=FRAME_MIN_FACE)
        if not len(found):
            return
        landmarks = found.landmarks[_largest(found.boxes)][None]
        t0 = time.perf_counter()
        result.embeddings[index] = engine.embed(engine.align(photo, landmarks))[0]
        result.embed_s.append(time.perf_counter() - t0)


class DlibOwnStack:
    """dlib's HOG + 5-point predictor + ResNet, the baseline."""

    def __init__(self) -> None:
        from benchmarks.dlib_reference import DlibStack

        stack = DlibStack()
        self.detector, self.predictor = stack.detector, stack.shape5
        self.recogniser = stack.recogniser
        self.result = StackResult()

    def measure(self, index: int, photo: np.ndarray, frame: np.ndarray) -> None:
        result = self.result
        t0 = time.perf_counter()
        self.detector(frame, 1)  # one upsampling: HOG's 80 px window then finds 40 px faces
        result.detect_s.append(time.perf_counter() - t0)
        photo = np.ascontiguousarray(photo)
        rects = self.detector(photo, 0) or self.detector(photo, 1)
        if not rects:
            return
        rect = max(rects, key=lambda r: r.area())
        t0 = time.perf_counter()
        shape = self.predictor(photo, rect)
        descriptor = self.recogniser.compute_face_descriptor(photo, shape)
        result.embed_s.append(time.perf_counter() - t0)
        result.embeddings[index] = np.asarray(descriptor, np.float32)


def verification(
    identities: list[str],
    indices: list[int],
    embeddings: dict[int, np.ndarray],
    same: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> dict:
    """TAR, FAR and balanced accuracy over all pairs of ``indices``; ``same`` turns the pairs'
    embeddings into a boolean "the stack says same person" per pair."""
    pairs = np.array(list(itertools.combinations(range(len(indices)), 2)), dtype=np.intp)
    if not len(pairs):
        return {"pairs": 0, "tar": None, "far": None, "verification_accuracy": None}
    labels = np.array([identities[i] for i in indices])
    truth = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    matrix = np.stack([embeddings[i] for i in indices])
    said = same(matrix[pairs[:, 0]], matrix[pairs[:, 1]])
    tar = float(said[truth].mean()) if truth.any() else None
    far = float(said[~truth].mean()) if (~truth).any() else None
    accuracy = None if tar is None or far is None else (tar + 1.0 - far) / 2.0
    return {
        "pairs": len(pairs),
        "positive_pairs": int(truth.sum()),
        "tar": _round(tar),
        "far": _round(far),
        "verification_accuracy": _round(accuracy),
    }


def match_timing(dimension: int, entries: int = 10_000, runs: int = 500) -> list[float]:
    """Seconds for one query against an ``entries``-row gallery, ``runs`` times."""
    rng = np.random.default_rng(7)
    gallery = Gallery(pack="bench", dim=dimension, threshold=0.5)
    vectors = rng.standard_normal((entries, dimension)).astype(np.float32)
    gallery.add_rows([f"HS{i // 5:06d}" for i in range(entries)], vectors)  # 5 photos each
    queries = rng.standard_normal((runs, dimension)).astype(np.float32)
    gallery.search(queries[:1])  # build caches outside the timing
    times = []
    for query in queries:
        t0 = time.perf_counter()
        gallery.search(query[None])
        times.append(time.perf_counter() - t0)
    return times


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else round(a / b, 2)


def run(
    roots: list[Path],
    pack_name: str,
    *,
    models_dir: Path | None = None,
    threads: int = 0,
    limit: int | None = None,
    with_dlib: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict:
    """Run both stacks on the photos under ``roots`` and return the figures as a dict.

    Photos are decoded one at a time and each stack sees it before the next is read, so memory
    stays that of the models, whatever the size of the set.
    """
    items = collect(roots)
    files_seen = len(items)
    items = items[:limit] if limit else items
    engine = FaceEngine(load_pack(pack_name, models_dir), threads=threads)
    stacks: list[OurStack | DlibOwnStack] = [OurStack(engine)]
    if with_dlib:
        stacks.append(DlibOwnStack())
    progress(f"{pack_name}{' and dlib' if with_dlib else ''}: {len(items)} images")
    identities: list[str] = []
    bad: list[str] = []
    for identity, path in items:
        try:
            image = read_image(path)
        except ImageError as exc:
            bad.append(str(exc))
            continue
        photo, frame = for_accuracy(image), as_frame(image)
        for stack in stacks:
            stack.measure(len(identities), photo, frame)
        identities.append(identity)
    ours = stacks[0].result
    common = set(ours.embeddings)
    for stack in stacks[1:]:
        common &= set(stack.result.embeddings)
    indices = sorted(common)
    threshold = engine.threshold
    progress("matching against a 10,000-entry gallery")
    figures = {
        "pack": pack_name,
        "images": len(identities) + len(bad),
        "bad_images": len(bad),
        "bad_image_reasons": bad[:10],
        "faces_found": len(ours.embeddings),
        "evaluated_images": len(indices),
        "threshold": threshold,
        **verification(
            identities, indices, ours.embeddings, lambda a, b: np.sum(a * b, axis=1) >= threshold
        ),
        **_timings(ours),
        "ms_match_10k_p50": percentiles_ms(match_timing(engine.embedding_size))["p50"],
        "rss_mb": peak_rss_mb(),
        "frame": f"{FRAME[0]}x{FRAME[1]}, min face {FRAME_MIN_FACE} px",
        "files_seen": files_seen,
    }
    if with_dlib:
        theirs = stacks[1].result
        baseline = {
            "stack": "dlib HOG + shape_predictor_5 + resnet (dlib-bin)",
            "faces_found": len(theirs.embeddings),
            "threshold": DLIB_THRESHOLD,
            **verification(
                identities,
                indices,
                theirs.embeddings,
                lambda a, b: np.linalg.norm(a - b, axis=1) <= DLIB_THRESHOLD,
            ),
            **_timings(theirs),
        }
        figures["dlib"] = baseline
        figures["ratios"] = {
            "embed_speedup": _ratio(baseline["ms_embed_p50"], figures["ms_embed_p50"]),
            "detect_speedup": _ratio(baseline["ms_detect_p50"], figures["ms_detect_p50"]),
            "accuracy_delta": _round(
                (figures["verification_accuracy"] or 0) - (baseline["verification_accuracy"] or 0)
            ),
        }
    return figures


def _timings(result: StackResult) -> dict:
    return {
        "ms_detect_p50": percentiles_ms(result.detect_s)["p50"] if result.detect_s else None,
        "ms_embed_p50": percentiles_ms(result.embed_s)["p50"] if result.embed_s else None,
    }
