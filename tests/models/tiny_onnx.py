"""Tiny ONNX stand-ins for an InsightFace pack's networks, with the real ones' inputs and outputs.

The real weights (buffalo_l and friends) are non-commercial and never in the repository, so the
tests build these instead. Each has the input and output names and shapes of its namesake, so
insightface's model routing, SCRFD's decoding and ArcFace's preprocessing all run unchanged:

- SCRFD (``det_10g``): input ``input.1`` [1, 3, ?, ?]; nine outputs, scores (N, 1), box
  distances (N, 4) and keypoint offsets (N, 10) for strides 8, 16 and 32, two anchors per
  location. The image content is ignored except for one check of channel order: it reports its
  faces only when the red channel is, on average, brighter than the blue one (SCRFD is fed RGB).
  The faces it reports are fixed in network-input pixels, so a test knows exactly what insightface
  must decode from them.
- ArcFace (``w600k_r50``): input [N, 3, 112, 112], output (N, 512): a fixed random projection of
  the 8×8-pooled chip, so equal chips give equal embeddings and different chips different ones.
- The pack's other networks (``1k3d68``, ``2d106det``, ``genderage``), with their shapes only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_OPSET = 13
_IR_VERSION = 7  # old enough for any onnxruntime the project supports
_STRIDES = (8, 16, 32)
_ANCHORS = 2
# Output names of buffalo_l's det_10g.onnx: scores, then boxes, then keypoints, by stride.
_SCRFD_OUTPUTS = ("448", "471", "494", "451", "474", "497", "454", "477", "500")


@dataclass(frozen=True)
class TinyFace:
    """A face the tiny SCRFD reports, in pixels of the network input (after letterboxing).

    ``landmarks`` are five (x, y) points: left eye, right eye, nose, mouth left, mouth right, as
    seen in the image. The face is reported by the anchor nearest its box's centre on the
    ``stride`` level.
    """

    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    score: float = 0.9
    stride: int = 8
    anchor: int = 0

    def encode(self) -> tuple[int, int, np.ndarray, np.ndarray]:
        """Grid cell (gx, gy) and the raw distances SCRFD would output, in units of stride."""
        x1, y1, x2, y2 = self.box
        s = self.stride
        gx, gy = round((x1 + x2) / 2 / s), round((y1 + y2) / 2 / s)
        ax, ay = gx * s, gy * s
        distances = np.array([ax - x1, ay - y1, x2 - ax, y2 - ay], np.float32) / s
        points = np.asarray(self.landmarks, np.float32).reshape(5, 2)
        offsets = ((points - [ax, ay]) / s).reshape(10).astype(np.float32)
        return gx, gy, distances, offsets


def _const(name: str, value: np.ndarray | int | float) -> onnx.NodeProto:
    array = np.asarray(value)
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="campusgate-tests"
    )
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_scrfd(
    path: Path,
    faces: Sequence[TinyFace] = (),
    *,
    batched: bool = False,
    input_size: tuple[int, int] | None = None,
    with_keypoints: bool = True,
) -> Path:
    """Write a tiny SCRFD that reports ``faces`` whatever the input size.

    ``batched`` gives outputs a leading batch axis (1, N, C) as some exports do; ``input_size``
    (width, height) fixes the input instead of leaving it dynamic; without ``with_keypoints`` it
    has the six outputs of SCRFD models that give no landmarks.
    """
    for face in faces:
        if face.stride not in _STRIDES or face.anchor not in range(_ANCHORS):
            raise ValueError(f"stride must be one of {_STRIDES} and anchor 0 or 1: {face}")
    height_dim: int | str = input_size[1] if input_size else "?"
    width_dim: int | str = input_size[0] if input_size else "?"
    nodes = [
        helper.make_node("Shape", ["input.1"], ["shape"]),
        _const("i2", np.int64(2)),
        _const("i3", np.int64(3)),
        helper.make_node("Gather", ["shape", "i2"], ["H"], axis=0),
        helper.make_node("Gather", ["shape", "i3"], ["W"], axis=0),
        _const("zero", np.int64(0)),
        _const("one", np.int64(1)),
        _const("anchors", np.int64(_ANCHORS)),
        _const("axis0", np.array([0], np.int64)),
        _const("axis1", np.array([1], np.int64)),
        # The channel-order check: mean of channel 0 (R) against channel 2 (B).
        _const("c0", np.array([0], np.int64)),
        _const("c1", np.array([1], np.int64)),
        _const("c2", np.array([2], np.int64)),
        _const("c3", np.array([3], np.int64)),
        helper.make_node("Slice", ["input.1", "c0", "c1", "axis1"], ["red"]),
        helper.make_node("Slice", ["input.1", "c2", "c3", "axis1"], ["blue"]),
        helper.make_node("ReduceMean", ["red"], ["red_mean"], keepdims=0),
        helper.make_node("ReduceMean", ["blue"], ["blue_mean"], keepdims=0),
        helper.make_node("Greater", ["red_mean", "blue_mean"], ["is_rgb"]),
        helper.make_node("Cast", ["is_rgb"], ["gate"], to=TensorProto.FLOAT),
    ]
    outputs: dict[str, str] = {}
    widths = {"score": 1, "bbox": 4, "kps": 10}
    for stride in _STRIDES:
        mine = [f for f in faces if f.stride == stride]
        cells = [f.encode() for f in mine]
        # A stride with no face still needs a (1, F) row of anchor indices: -1 matches none.
        gx = np.array([c[0] for c in cells] or [0], np.int64)
        gy = np.array([c[1] for c in cells] or [-1], np.int64)
        anchor = np.array([f.anchor for f in mine] or [0], np.int64)
        values = {
            "score": np.array([[f.score] for f in mine] or [[0.0]], np.float32),
            "bbox": np.stack([c[2] for c in cells]) if cells else np.zeros((1, 4), np.float32),
            "kps": np.stack([c[3] for c in cells]) if cells else np.zeros((1, 10), np.float32),
        }
        p = f"s{stride}_"
        nodes += [
            _const(p + "stride", np.int64(stride)),
            helper.make_node("Div", ["H", p + "stride"], [p + "h"]),
            helper.make_node("Div", ["W", p + "stride"], [p + "w"]),
            helper.make_node("Mul", [p + "h", p + "w"], [p + "hw"]),
            helper.make_node("Mul", [p + "hw", "anchors"], [p + "n"]),
            helper.make_node("Range", ["zero", p + "n", "one"], [p + "idx"]),
            helper.make_node("Unsqueeze", [p + "idx", "axis1"], [p + "col"]),
            # Anchor index of each face: (gy * W/s + gx) * anchors + anchor.
            _const(p + "gx", gx),
            _const(p + "gy", gy),
            _const(p + "a", anchor),
            helper.make_node("Mul", [p + "gy", p + "w"], [p + "row_start"]),
            helper.make_node("Add", [p + "row_start", p + "gx"], [p + "cell"]),
            helper.make_node("Mul", [p + "cell", "anchors"], [p + "first"]),
            helper.make_node("Add", [p + "first", p + "a"], [p + "k"]),
            helper.make_node("Unsqueeze", [p + "k", "axis0"], [p + "row"]),
            helper.make_node("Equal", [p + "col", p + "row"], [p + "hit"]),
            helper.make_node("Cast", [p + "hit"], [p + "onehot"], to=TensorProto.FLOAT),
        ]
        for kind, table in values.items():
            nodes += [
                _const(p + kind + "_table", table),
                helper.make_node(
                    "MatMul", [p + "onehot", p + kind + "_table"], [p + kind + "_raw"]
                ),
            ]
            result = p + kind + "_raw"
            if kind == "score":
                nodes.append(helper.make_node("Mul", [result, "gate"], [p + "score_gated"]))
                result = p + "score_gated"
            outputs[f"{kind}{stride}"] = result
    order = [f"{kind}{s}" for kind in ("score", "bbox", "kps") for s in _STRIDES]
    if not with_keypoints:
        order = order[:6]
    graph_outputs = []
    for name, key in zip(_SCRFD_OUTPUTS, order, strict=False):
        width = widths[key.rstrip("0123456789")]
        if batched:
            nodes.append(helper.make_node("Unsqueeze", [outputs[key], "axis0"], [name]))
            shape: list[int | str] = [1, f"n{key}", width]
        else:
            nodes.append(helper.make_node("Identity", [outputs[key]], [name]))
            shape = [f"n{key}", width]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [
            helper.make_tensor_value_info(
                "input.1", TensorProto.FLOAT, [1, 3, height_dim, width_dim]
            )
        ],
        graph_outputs,
    )
    return _save(graph, path)


def _pooled_projection(
    path: Path,
    *,
    input_name: str,
    output_name: str,
    batch: int | str,
    size: int,
    pool: int,
    width: int,
    seed: int,
) -> Path:
    """Average-pool the input by ``pool``, flatten it and project it to ``width`` features."""
    cells = 3 * (size // pool) ** 2
    weights = np.random.default_rng(seed).standard_normal((cells, width)).astype(np.float32)
    nodes = [
        helper.make_node(
            "AveragePool", [input_name], ["pooled"], kernel_shape=[pool, pool], strides=[pool, pool]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        _const("projection", weights),
        helper.make_node("MatMul", ["flat", "projection"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, width])],
    )
    return _save(graph, path)


def write_arcface(
    path: Path,
    *,
    embedding_size: int = 512,
    input_name: str = "input.1",
    fixed_batch: bool = False,
    seed: int = 0,
) -> Path:
    """Write a tiny ArcFace: [N, 3, 112, 112] → [N, embedding_size] (batch 1 if ``fixed_batch``)."""
    return _pooled_projection(
        path,
        input_name=input_name,
        output_name="683",  # w600k_r50's output name
        batch=1 if fixed_batch else "None",
        size=112,
        pool=8,
        width=embedding_size,
        seed=seed,
    )


def write_landmark_3d68(path: Path) -> Path:
    """Write a stand-in for ``1k3d68.onnx``: "data" [1, 3, 192, 192] → "fc1" [1, 3309]."""
    return _pooled_projection(
        path, input_name="data", output_name="fc1", batch=1, size=192, pool=192, width=3309, seed=1
    )


def write_landmark_2d106(path: Path) -> Path:
    """Write a stand-in for ``2d106det.onnx``: "data" [N, 3, 192, 192] → "fc1" [N, 212]."""
    return _pooled_projection(
        path,
        input_name="data",
        output_name="fc1",
        batch="None",
        size=192,
        pool=192,
        width=212,
        seed=2,
    )


def write_genderage(path: Path) -> Path:
    """Write a stand-in for ``genderage.onnx``: "data" [N, 3, 96, 96] → "fc1" [N, 3]."""
    return _pooled_projection(
        path, input_name="data", output_name="fc1", batch="None", size=96, pool=96, width=3, seed=3
    )


#: The files of buffalo_l, in the order its zip lists them.
BUFFALO_L_FILES = (
    "1k3d68.onnx",
    "2d106det.onnx",
    "det_10g.onnx",
    "genderage.onnx",
    "w600k_r50.onnx",
)


def write_buffalo_like(folder: Path, faces: Sequence[TinyFace] = ()) -> Path:
    """Write the five networks of a buffalo_l pack into ``folder``, the detector reporting
    ``faces``; returns the folder."""
    write_landmark_3d68(folder / "1k3d68.onnx")
    write_landmark_2d106(folder / "2d106det.onnx")
    write_scrfd(folder / "det_10g.onnx", faces)
    write_genderage(folder / "genderage.onnx")
    write_arcface(folder / "w600k_r50.onnx")
    return folder
