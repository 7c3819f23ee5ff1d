"""Convert dlib's ResNet face recogniser (``dlib_face_recognition_resnet_model_v1.dat``) to ONNX.

dlib stores a network as nested C++ objects written by ``dlib::serialize`` (``dlib/serialize.h``,
``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``). The file does not name the layer
*types*, only each layer's own parameters, so the converter knows the network's structure — the
``anet_type`` of dlib's ``tools/python/src/face_recognition.cpp``, a 29-layer ResNet — and checks
every version string, shape and stride in the file against it; any mismatch, truncation or
non-finite weight raises :class:`DlibFormatError` naming the layer and byte offset.

The ONNX model it writes:

- input ``chip``: float32 N×3×150×150, RGB in 0..255 (the 150×150 face chip that
  ``dlib.get_face_chip(image, shape, size=150, padding=0.25)`` returns, transposed to NCHW and cast
  to float). dlib's own input normalisation — subtract the training set's mean colour, divide by
  256 — is the graph's first two nodes, so callers never repeat it. N is dynamic.
- output ``descriptor``: float32 N×128, the vector dlib's ``loss_metric`` returns, not normalised.

Each ``affine`` layer (a batch norm frozen into ``y = gamma * x + beta`` per channel) follows a
convolution, so it is folded into that convolution's weights and bias by default; pass
``fold_affine=False`` for the literal layer-by-layer translation.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "chip"
OUTPUT_NAME = "descriptor"
#: ONNX opset and IR version: old enough for every onnxruntime this project supports (≥ 1.18).
OPSET = 17
IR_VERSION = 8


class DlibFormatError(ValueError):
    """The file is not a dlib ResNet face recogniser, or it is truncated or corrupted."""


@dataclass(frozen=True, slots=True)
class ConversionInfo:
    """What a conversion produced, for a model pack's manifest and the installer's log.

    ``distance_threshold`` is the Euclidean distance between two (unnormalised) descriptors below
    which dlib's training treated faces as the same person, read from the file (0.6).
    """

    onnx_path: Path
    source_sha256: str
    onnx_sha256: str
    chip_size: int
    mean_rgb: tuple[float, float, float]
    embedding_size: int
    distance_threshold: float
    parameters: int
    conv_layers: int


def convert_dlib_resnet(
    dat_path: Path,
    onnx_path: Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    fold_affine: bool = True,
) -> ConversionInfo:
    """Parse ``dat_path`` and write the equivalent ONNX model to ``onnx_path``.

    ``progress(done, total)`` is called as the file is parsed, in bytes of the source file, and
    once more with ``done == total`` when the model is written. The model is checked with
    ``onnx.checker`` and written to a temporary file first, so ``onnx_path`` is either the whole
    model or untouched. Raises :class:`DlibFormatError` for a file that is not this network.
    """
    dat_path, onnx_path = Path(dat_path), Path(onnx_path)
    data = dat_path.read_bytes()
    source_sha256 = hashlib.sha256(data).hexdigest()
    try:
        net = _parse(data, progress)
        model = _build_model(net, fold_affine=fold_affine)
    except DlibFormatError as error:
        raise DlibFormatError(f"{dat_path}: {error}") from None
    model.metadata_props.add(key="source_sha256", value=source_sha256)
    onnx.checker.check_model(model, full_check=True)

    payload = model.SerializeToString()
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    partial = onnx_path.with_name(onnx_path.name + ".partial")
    partial.write_bytes(payload)
    os.replace(partial, onnx_path)
    if progress is not None:
        progress(len(data), len(data))

    convs = [layer for layer in net.layers if isinstance(layer, _Conv)]
    return ConversionInfo(
        onnx_path=onnx_path,
        source_sha256=source_sha256,
        onnx_sha256=hashlib.sha256(payload).hexdigest(),
        chip_size=net.chip_size,
        mean_rgb=net.mean_rgb,
        embedding_size=net.layers[-1].weight.shape[1],
        distance_threshold=net.distance_threshold,
        parameters=sum(weights.size for layer in net.layers for weights in _weights(layer)),
        conv_layers=len(convs),
    )


# --- the network's structure -------------------------------------------------------------------
# face_recognition.cpp's anet_type, outermost (loss side) layer first, as dlib nests and writes
# it. Filter counts, kernel sizes and strides are read from the file and checked there.
_BLOCK = ("affine", "con", "relu", "affine", "con")  # affine<con<relu<affine<con<…>>>>>
_ARES = ("relu", "add_prev1", *_BLOCK, "tag1")
_ARES_DOWN = ("relu", "add_prev2", "avg_pool", "skip1", "tag2", *_BLOCK, "tag1")
_LAYERS = (
    "fc",
    "avg_pool",
    *_ARES_DOWN,  # alevel0, 256 filters
    *_ARES, *_ARES, *_ARES_DOWN,  # alevel1, 256
    *_ARES, *_ARES, *_ARES_DOWN,  # alevel2, 128
    *(_ARES * 3), *_ARES_DOWN,  # alevel3, 64
    *(_ARES * 3),  # alevel4, 32
    "max_pool",
    "relu",
    "affine",
    "con",
)  # fmt: skip


def _kind_and_tag(token: str) -> tuple[str, int]:
    """``"add_prev2"`` → ``("add_prev", 2)``; the tag number is 0 for layers without one."""
    kind = token.rstrip("0123456789")
    return kind, int(token[len(kind) :] or 0)


_LAYER_KINDS = tuple(map(_kind_and_tag, _LAYERS))

# Version strings of each layer's details that dlib's current deserialisers accept.
_DETAIL_VERSIONS = {
    "con": ("con_4", "con_5"),
    "affine": ("affine_", "affine_2"),
    "relu": ("relu_",),
    "max_pool": ("max_pool_2",),
    "avg_pool": ("avg_pool_2",),
    "add_prev": ("add_prev_",),
    "fc": ("fc_2", "fc_3"),
}
_FC_NO_BIAS = 1  # dlib's fc_bias_mode


# --- parsed layers, input side first -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Conv:
    weight: np.ndarray  # O×I×kh×kw, as dlib and ONNX both lay it out
    bias: np.ndarray  # O
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Affine:
    gamma: np.ndarray  # per channel
    beta: np.ndarray


@dataclass(frozen=True, slots=True)
class _Pool:
    op: str  # "MaxPool" or "AveragePool"
    window: tuple[int, int]  # (0, 0): the whole input, as in avg_pool_everything
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, slots=True)
class _Dense:
    weight: np.ndarray  # inputs×outputs: dlib's fc_ computes x @ weight


@dataclass(frozen=True, slots=True)
class _Relu:
    """max(x, 0), element-wise."""


@dataclass(frozen=True, slots=True)
class _Tag:
    """Remembers the current output under ``tag`` (dlib's tagN)."""

    tag: int


@dataclass(frozen=True, slots=True)
class _Skip:
    """Replaces the current output by the one remembered under ``tag`` (dlib's skipN)."""

    tag: int


@dataclass(frozen=True, slots=True)
class _AddPrev:
    """Adds the output remembered under ``tag`` to the current one (dlib's add_prevN)."""

    tag: int


_Layer = _Conv | _Affine | _Pool | _Dense | _Relu | _Tag | _Skip | _AddPrev
_LayerT = TypeVar("_LayerT", _Conv, _Affine, _Dense)


@dataclass(frozen=True, slots=True)
class _Network:
    mean_rgb: tuple[float, float, float]
    chip_size: int
    distance_threshold: float
    layers: list[_Layer]


# --- dlib's serialisation format ---------------------------------------------------------------
class _Reader:
    """A cursor over bytes written by dlib's ``serialize`` overloads."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.offset = 0

    def _take(self, size: int, what: str) -> memoryview:
        end = self.offset + size
        if end > len(self._data):
            raise DlibFormatError(f"file ends at byte {len(self._data)} while reading {what}")
        chunk = self._data[self.offset : end]
        self.offset = end
        return chunk

    def integer(self, what: str = "an integer") -> int:
        """An integer: a control byte (bit 7 = negative, bits 0–3 = byte count) then LE bytes."""
        control = self._take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise DlibFormatError(
                f"bad control byte 0x{control:02x} at byte {self.offset - 1} while reading {what}"
            )
        value = int.from_bytes(self._take(size, what), "little")
        return -value if control & 0x80 else value

    def count(self, what: str) -> int:
        value = self.integer(what)
        if value < 0:
            raise DlibFormatError(f"negative {what} ({value}) before byte {self.offset}")
        return value

    def real(self, what: str = "a floating point number") -> float:
        """A float: integer mantissa then integer exponent (``dlib::float_details``)."""
        mantissa, exponent = self.integer(what), self.integer(what)
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in specials:
            return specials[exponent]
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise DlibFormatError(f"{what} before byte {self.offset} overflows") from None

    def flag(self, what: str = "a flag") -> bool:
        byte = self._take(1, what).tobytes()
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"bad flag {byte!r} at byte {self.offset - 1}")
        return byte == b"1"

    def string(self, what: str = "a version string") -> str:
        raw = self._take(self.count(what), what).tobytes()
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise DlibFormatError(f"{what} at byte {self.offset - len(raw)} is not text") from None

    def tensor(self, what: str) -> np.ndarray:
        """A ``resizable_tensor``: version 2, its four dimensions, then little-endian float32s."""
        version = self.integer(what)
        if version != 2:
            raise DlibFormatError(f"unsupported tensor version {version} in {what}")
        shape = tuple(self.count(what) for _ in range(4))
        raw = self._take(4 * math.prod(shape), what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: version 1 and the four dimensions of a view into ``params``."""
        version = self.integer(what)
        if version != 1:
            raise DlibFormatError(f"unsupported alias_tensor version {version} in {what}")
        n, k, nr, nc = (self.count(what) for _ in range(4))
        return n, k, nr, nc

    def expect(self, expected: str | tuple[str, ...], what: str) -> str:
        accepted = (expected,) if isinstance(expected, str) else expected
        found = self.string(what)
        if found not in accepted:
            raise DlibFormatError(
                f"expected {' or '.join(map(repr, accepted))} for {what}, "
                f"found {found!r} before byte {self.offset}"
            )
        return found


def _parse(data: bytes, progress: Callable[[int, int], None] | None) -> _Network:
    """Read the whole file: loss, the layers' nesting headers, the input, then each layer."""
    reader = _Reader(data)
    if reader.integer("the loss layer's version") != 1:
        raise DlibFormatError("not a dlib network file (bad add_loss_layer version)")
    loss = reader.expect(("loss_metric_", "loss_metric_2"), "the loss layer")
    distance_threshold = 0.6  # loss_metric_'s built-in value, stored from version 2 on
    if loss == "loss_metric_2":
        reader.real("the loss margin")
        distance_threshold = reader.real("the loss distance threshold")

    # Each layer writes its version and then its subnetwork before its own details, so the file
    # holds every layer's version (outermost first), the input layer, and then the details from
    # the input side up. Tags and skips (version 1) write nothing else.
    versions = []
    for index, (token, (kind, _)) in enumerate(zip(_LAYERS, _LAYER_KINDS, strict=True)):
        version = reader.integer(f"the version of layer {index} ({token})")
        if kind in ("tag", "skip"):
            allowed = (1,)
        elif index == len(_LAYERS) - 1:
            allowed = (2, 3)  # the add_layer that sits on the input layer
        else:
            allowed = (1, 2)
        if version not in allowed:
            raise DlibFormatError(
                f"layer {index} should be {token} but has version {version}: "
                "this is not dlib's face recognition ResNet"
            )
        versions.append(version)

    reader.expect("input_rgb_image_sized", "the input layer")
    mean_rgb = (reader.real("mean red"), reader.real("mean green"), reader.real("mean blue"))
    rows, cols = reader.count("chip rows"), reader.count("chip columns")
    if rows != cols or not all(map(math.isfinite, mean_rgb)):
        raise DlibFormatError(f"bad input layer: {rows}×{cols} chips, mean colour {mean_rgb}")

    layers: list[_Layer] = []
    for index in reversed(range(len(_LAYERS))):
        kind, tag = _LAYER_KINDS[index]
        try:
            if kind == "tag":
                layers.append(_Tag(tag))
            elif kind == "skip":
                layers.append(_Skip(tag))
            else:
                layers.append(_read_details(reader, kind, tag))
                _skip_layer_state(reader, versions[index], on_input=index == len(_LAYERS) - 1)
        except DlibFormatError as error:
            raise DlibFormatError(f"layer {index} ({_LAYERS[index]}): {error}") from None
        if progress is not None:
            progress(reader.offset, len(data))
    if reader.offset != len(data):
        raise DlibFormatError(f"{len(data) - reader.offset} unexpected bytes after the network")
    return _Network(mean_rgb, rows, distance_threshold, layers)


def _read_details(reader: _Reader, kind: str, tag: int) -> _Layer:
    """One layer's own parameters (the ``serialize`` friend of its ``*_`` class in layers.h)."""
    version = reader.expect(_DETAIL_VERSIONS[kind], f"a {kind} layer")
    if kind == "con":
        params = reader.tensor("the filters")
        filters = reader.count("num_filters")
        window = (reader.count("nr"), reader.count("nc"))
        stride = (reader.count("stride_y"), reader.count("stride_x"))
        padding = (reader.count("padding_y"), reader.count("padding_x"))
        shape = reader.alias("the filter shape")
        reader.alias("the bias shape")
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.real()
        use_bias = reader.flag() if version == "con_5" else True
        if shape[0] != filters or shape[2:] != window or min(stride) < 1:
            raise DlibFormatError(
                f"inconsistent convolution: {filters} filters of {shape}, stride {stride}"
            )
        flat, size = params.ravel(), math.prod(shape)
        if flat.size != size + filters * use_bias:
            raise DlibFormatError(f"{flat.size} parameters for {filters} filters of {shape}")
        bias = flat[size:] if use_bias else np.zeros(filters, np.float32)
        return _checked(_Conv(flat[:size].reshape(shape), bias, stride, padding))
    if kind == "affine":
        params = reader.tensor("gamma and beta")
        gamma, beta = reader.alias("gamma's shape"), reader.alias("beta's shape")
        reader.integer("the mode")
        disabled = reader.flag() if version == "affine_2" else False
        channels = gamma[1]
        if gamma != (1, channels, 1, 1) or beta != gamma:
            raise DlibFormatError(f"only per-channel affine layers are supported, got {gamma}")
        if disabled:
            ones = np.ones(channels, np.float32)
            return _Affine(ones, np.zeros(channels, np.float32))
        flat = params.ravel()
        if flat.size != 2 * channels:
            raise DlibFormatError(f"{flat.size} parameters for {channels} channels")
        return _checked(_Affine(flat[:channels], flat[channels:]))
    if kind in ("max_pool", "avg_pool"):
        window = (reader.count("nr"), reader.count("nc"))
        stride = (reader.count("stride_y"), reader.count("stride_x"))
        padding = (reader.count("padding_y"), reader.count("padding_x"))
        op = "MaxPool" if kind == "max_pool" else "AveragePool"
        return _Pool(op, window, stride, padding)
    if kind == "fc":
        outputs, inputs = reader.count("num_outputs"), reader.count("num_inputs")
        params = reader.tensor("the weights")
        weights = reader.alias("the weights' shape")
        reader.alias("the biases' shape")
        if reader.integer("the bias mode") != _FC_NO_BIAS:
            raise DlibFormatError("expected fc_no_bias")
        for _ in range(4):
            reader.real()
        if version == "fc_3":
            reader.flag()
        if weights[:2] != (inputs, outputs) or params.size != inputs * outputs:
            raise DlibFormatError(f"{params.size} parameters for a {inputs}→{outputs} layer")
        return _checked(_Dense(params.reshape(inputs, outputs)))
    if kind == "relu":
        return _Relu()
    return _AddPrev(tag)


def _skip_layer_state(reader: _Reader, version: int, *, on_input: bool) -> None:
    """Skip what ``add_layer`` writes after its details: flags and training-time tensors."""
    for _ in range(3):
        reader.flag("the layer's state flags")
    tensors = ("x_grad", "cached_output", "grad_final") if on_input else ("x_grad", "cached_output")
    for name in tensors:
        reader.tensor(name)
    if on_input and version == 3:
        reader.integer("the sample expansion factor")
    if not on_input and version == 2:
        reader.tensor("params_grad")


def _weights(layer: _Layer) -> list[np.ndarray]:
    return [
        value
        for field in fields(layer)
        if isinstance(value := getattr(layer, field.name), np.ndarray)
    ]


def _checked(layer: _LayerT) -> _LayerT:
    """The layer, after making sure no weight is NaN or infinite (a sign of corruption)."""
    if not all(np.isfinite(weights).all() for weights in _weights(layer)):
        raise DlibFormatError("non-finite weights")
    return layer


# --- ONNX --------------------------------------------------------------------------------------
def _fold_affine(layers: list[_Layer]) -> list[_Layer]:
    """Merge each affine layer into the convolution just below it: conv weights and bias scaled
    per output channel by gamma, plus beta (in float64, rounded once)."""
    folded: list[_Layer] = []
    for layer in layers:
        below = folded[-1] if folded else None
        if isinstance(layer, _Affine) and isinstance(below, _Conv):
            gamma, beta = layer.gamma.astype(np.float64), layer.beta.astype(np.float64)
            weight = below.weight * gamma[:, None, None, None]
            bias = below.bias * gamma + beta
            folded[-1] = _Conv(
                weight.astype(np.float32), bias.astype(np.float32), below.stride, below.padding
            )
        else:
            folded.append(layer)
    return folded


class _GraphBuilder:
    """Emits ONNX nodes while tracking the current tensor's name and C×H×W shape."""

    def __init__(self, chip_size: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.current, self.shape = INPUT_NAME, (3, chip_size, chip_size)
        self.tags: dict[int, tuple[str, tuple[int, int, int]]] = {}

    def constant(self, array: np.ndarray, hint: str) -> str:
        name = f"{hint}_{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def emit(self, op: str, inputs: list[str], shape: tuple[int, int, int], **attrs) -> str:
        if min(shape) < 1:
            raise DlibFormatError(f"{op} would leave an empty {shape} tensor")
        output = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        self.current, self.shape = output, shape
        return output

    def channel_vector(self, values: np.ndarray, hint: str) -> str:
        return self.constant(values.astype(np.float32).reshape(1, -1, 1, 1), hint)

    def pad_to(self, name: str, shape: tuple[int, int, int], target: tuple[int, int, int]) -> str:
        """Zero-pad at the end of channels, rows and columns, as dlib's add_prev does."""
        if shape == target:
            return name
        pads = [0, 0, 0, 0, 0, *(t - s for s, t in zip(shape, target, strict=True))]
        pads_name = self.constant(np.array(pads, np.int64), "pads")
        return self.emit("Pad", [name, pads_name], target, mode="constant")


def _output_size(size: int, window: int, stride: int, padding: int) -> int:
    """dlib's (and ONNX's default, floor-mode) output size of a convolution or pooling."""
    return 1 + (size + 2 * padding - window) // stride


def _build_model(net: _Network, *, fold_affine: bool) -> onnx.ModelProto:
    layers = _fold_affine(net.layers) if fold_affine else net.layers
    graph = _GraphBuilder(net.chip_size)
    # input_rgb_image_sized: (pixel - mean) / 256; the division by a power of two is exact.
    mean = graph.channel_vector(np.array(net.mean_rgb), "mean_rgb")
    graph.emit("Sub", [INPUT_NAME, mean], graph.shape)
    scale = graph.constant(np.array(1 / 256, np.float32), "scale")
    graph.emit("Mul", [graph.current, scale], graph.shape)

    for layer in layers:
        channels, rows, cols = graph.shape
        if isinstance(layer, _Conv):
            filters, inputs, kh, kw = layer.weight.shape
            if inputs != channels:
                raise DlibFormatError(f"a convolution expects {inputs} channels, gets {channels}")
            (sy, sx), (py, px) = layer.stride, layer.padding
            shape = (filters, _output_size(rows, kh, sy, py), _output_size(cols, kw, sx, px))
            weight = graph.constant(layer.weight, "conv_w")
            bias = graph.constant(layer.bias, "conv_b")
            graph.emit(
                "Conv",
                [graph.current, weight, bias],
                shape,
                kernel_shape=[kh, kw],
                strides=[sy, sx],
                pads=[py, px, py, px],
            )
        elif isinstance(layer, _Affine):
            gamma = graph.channel_vector(layer.gamma, "gamma")
            beta = graph.channel_vector(layer.beta, "beta")
            graph.emit("Mul", [graph.current, gamma], graph.shape)
            graph.emit("Add", [graph.current, beta], graph.shape)
        elif isinstance(layer, _Relu):
            graph.emit("Relu", [graph.current], graph.shape)
        elif isinstance(layer, _Pool):
            if layer.window == (0, 0):
                graph.emit("Global" + layer.op, [graph.current], (channels, 1, 1))
                continue
            (kh, kw), (sy, sx), (py, px) = layer.window, layer.stride, layer.padding
            shape = (channels, _output_size(rows, kh, sy, py), _output_size(cols, kw, sx, px))
            # dlib averages over the part of each window inside the input (subm_clipped).
            extra = {"count_include_pad": 0} if layer.op == "AveragePool" else {}
            graph.emit(
                layer.op,
                [graph.current],
                shape,
                kernel_shape=[kh, kw],
                strides=[sy, sx],
                pads=[py, px, py, px],
                **extra,
            )
        elif isinstance(layer, _Tag):
            graph.tags[layer.tag] = (graph.current, graph.shape)
        elif isinstance(layer, _Skip):
            graph.current, graph.shape = graph.tags[layer.tag]
        elif isinstance(layer, _AddPrev):
            # dlib adds tensors of different sizes as if both were zero-padded to the larger.
            other, other_shape = graph.tags[layer.tag]
            target = tuple(map(max, graph.shape, other_shape))
            mine = graph.pad_to(graph.current, graph.shape, target)
            theirs = graph.pad_to(other, other_shape, target)
            graph.emit("Add", [mine, theirs], target)
        else:  # _Dense
            inputs, outputs = layer.weight.shape
            if inputs != channels * rows * cols:
                raise DlibFormatError(f"the fc layer expects {inputs} inputs, gets {graph.shape}")
            graph.emit("Flatten", [graph.current], graph.shape, axis=1)
            graph.emit(
                "MatMul", [graph.current, graph.constant(layer.weight, "fc_w")], (outputs, 1, 1)
            )
    graph.nodes[-1].output[0] = OUTPUT_NAME

    batch = "batch"
    chip = helper.make_tensor_value_info(
        INPUT_NAME, TensorProto.FLOAT, [batch, 3, net.chip_size, net.chip_size]
    )
    descriptor = helper.make_tensor_value_info(
        OUTPUT_NAME, TensorProto.FLOAT, [batch, graph.shape[0]]
    )
    onnx_graph = helper.make_graph(
        graph.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [chip],
        [descriptor],
        graph.initializers,
    )
    model = helper.make_model(
        onnx_graph,
        producer_name="campusgate",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=(
            f"dlib ResNet face descriptor. Input {INPUT_NAME}: float32 N×3×"
            f"{net.chip_size}×{net.chip_size} RGB 0..255 dlib face chip (padding 0.25). "
            f"Output {OUTPUT_NAME}: float32 N×{graph.shape[0]}, not normalised."
        ),
    )
    model.ir_version = IR_VERSION
    return model
