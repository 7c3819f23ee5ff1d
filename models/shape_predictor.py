"""dlib's 5-point face landmark predictor, read from dlib's own file and run in NumPy.

``shape_predictor_5_face_landmarks.dat`` (``face-recognition-models``) is the model that places
the points dlib's ResNet chips are cut from: the outer and inner corner of each eye and the base
of the nose. Cutting our chips from the same points, through the same geometry, is what makes our
descriptors those of dlib's own stack; MTCNN's eye centres and mouth corners only approximate it.

The model is Kazemi and Sullivan's cascade of regression trees (``dlib/image_processing/
shape_predictor.h``). A shape lives in the unit square of the face's box. Each of the 15 cascade
levels reads 800 pixels, placed relative to the current shape, and each of its 500 trees
compares pairs of them to pick a leaf whose offset is added to the shape. :class:`ShapePredictor`
does what dlib does step for step (same rounding to whole pixels, same grey levels), but runs
all trees of a level — and all faces — at once with array indexing.

:func:`chip_transform_5pt` is dlib's ``get_face_chip_details`` and ``get_mapping_to_chip``
(``dlib/image_transforms/interpolation.h``) for these five points: the image → chip affine map
that ``dlib.get_face_chip`` resamples through.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from models.convert.dlib_resnet import DlibFormatError, _Reader

#: dlib's mean 5-point face in the unit square of an unpadded chip, in the predictor's point
#: order (``get_face_chip_details``).
DLIB_MEAN_FACE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


class ShapePredictor:
    """A cascade of regression trees that places a face's landmarks inside its box.

    Arrays, with C cascade levels, T trees per level, S = L - 1 splits per tree (a full binary
    tree in heap order: node i's children are 2i + 1 and 2i + 2), F feature pixels per level and
    P landmarks:

    - ``initial_shape`` (P, 2): the mean shape every prediction starts from, in box units;
    - ``anchors`` (C, F) and ``deltas`` (C, F, 2): each feature pixel is its anchor landmark
      plus a delta, given in the initial shape's frame and moved with the current shape;
    - ``split_pixels`` (C, T, S, 2) and ``thresholds`` (C, T, S): a split goes to its left child
      when ``pixel[first] - pixel[second] > threshold``;
    - ``leaf_values`` (C, T, L, P, 2): what each leaf adds to the shape.

    Raises ``ValueError`` if the arrays do not fit together.
    """

    def __init__(
        self,
        initial_shape: np.ndarray,
        anchors: np.ndarray,
        deltas: np.ndarray,
        split_pixels: np.ndarray,
        thresholds: np.ndarray,
        leaf_values: np.ndarray,
    ) -> None:
        self.initial_shape = np.asarray(initial_shape, np.float32)
        self.anchors = np.asarray(anchors, np.intp)
        self.deltas = np.asarray(deltas, np.float32)
        self.split_pixels = np.asarray(split_pixels, np.intp)
        self.thresholds = np.asarray(thresholds, np.float32)
        self.leaf_values = np.asarray(leaf_values, np.float32)

        points = self.initial_shape.shape[0]
        levels, trees, leaves = self.leaf_values.shape[:3]
        features = self.anchors.shape[1] if self.anchors.ndim == 2 else 0
        splits = leaves - 1
        expected = {
            "initial_shape": (self.initial_shape.shape, (points, 2)),
            "anchors": (self.anchors.shape, (levels, features)),
            "deltas": (self.deltas.shape, (levels, features, 2)),
            "split_pixels": (self.split_pixels.shape, (levels, trees, splits, 2)),
            "thresholds": (self.thresholds.shape, (levels, trees, splits)),
            "leaf_values": (self.leaf_values.shape, (levels, trees, leaves, points, 2)),
        }
        for name, (found, wanted) in expected.items():
            if found != wanted:
                raise ValueError(f"{name} has shape {found}, expected {wanted}")
        if leaves < 2 or leaves & splits:
            raise ValueError(f"trees must be full binary trees, got {leaves} leaves")
        if not (0 <= self.anchors).all() or not (self.anchors < points).all():
            raise ValueError(f"anchors must index the {points} landmarks")
        if not (0 <= self.split_pixels).all() or not (self.split_pixels < features).all():
            raise ValueError(f"split pixels must index the {features} feature pixels")
        self._depth = splits.bit_length()
        # find_tform_between_shapes always maps from the initial shape: centre it once.
        initial = self.initial_shape.astype(np.float64)
        self._initial_centred = initial - initial.mean(0)
        self._initial_spread = float((self._initial_centred**2).sum())

    @classmethod
    def from_dat(cls, path: Path) -> ShapePredictor:
        """Read a file written by dlib's ``serialize(shape_predictor)``.

        Raises :class:`~models.convert.dlib_resnet.DlibFormatError` naming the file, what was
        being read and the byte offset, for a truncated, corrupted or foreign file.
        """
        path = Path(path)
        try:
            return cls(**_parse(path.read_bytes()))
        except (DlibFormatError, ValueError) as error:
            raise DlibFormatError(f"{path}: {error}") from None

    def save_npz(self, path: Path) -> None:
        """Write the arrays, compactly typed, to an ``.npz`` file for a model pack."""
        np.savez_compressed(
            path,
            initial_shape=self.initial_shape,
            anchors=self.anchors.astype(np.uint16),
            deltas=self.deltas,
            split_pixels=self.split_pixels.astype(np.uint16),
            thresholds=self.thresholds,
            leaf_values=self.leaf_values,
        )

    @classmethod
    def from_npz(cls, path: Path) -> ShapePredictor:
        """Read what :meth:`save_npz` wrote. Raises ``ValueError`` for a file that is not one."""
        with np.load(path, allow_pickle=False) as arrays:
            missing = set(_NPZ_ARRAYS) - set(arrays.files)
            if missing:
                raise ValueError(f"{path}: not a shape predictor (no {', '.join(sorted(missing))})")
            try:
                return cls(**{name: arrays[name] for name in _NPZ_ARRAYS})
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from None

    def predict(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """The landmarks (N, P, 2) ``x, y`` in image pixels of the faces in ``boxes`` (N, 4).

        ``image`` is H×W uint8 grey or H×W×3 uint8 colour (RGB or BGR: dlib's grey level is
        the plain mean of the three channels). A box ``x1, y1, x2, y2`` is where the unit
        square's corners (0, 0) and (1, 1) land, as dlib's ``rectangle`` ``left, top, right,
        bottom``: pass those to get ``dlib.shape_predictor(image, rect)``'s points. Those are
        whole pixels, ``floor(p + 0.5)`` of the sub-pixel points returned here.
        """
        pixels = _as_pixels(image)
        boxes = np.asarray(boxes, np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
            raise ValueError(f"expected finite boxes of shape (N, 4), got {np.shape(boxes)}")
        origin = boxes[:, None, :2]
        extent = boxes[:, None, 2:] - origin
        shape = np.repeat(self.initial_shape[None], len(boxes), axis=0)
        faces = np.arange(len(boxes))[:, None]
        trees = np.arange(self.leaf_values.shape[1])
        for level in range(self.leaf_values.shape[0]):
            # dlib keeps shapes and the similarity in float32, maps to pixels in float64 and
            # reads the nearest pixel; one outside the image reads 0.
            linear = self._similarity_from_initial(shape)
            points = self.deltas[level] @ linear.transpose(0, 2, 1) + shape[:, self.anchors[level]]
            where = np.floor(origin + points * extent + 0.5).astype(np.intp)
            values = _read(pixels, where[..., 0], where[..., 1])
            pairs = values[faces[:, :, None, None], self.split_pixels[level]]  # (N, T, S, 2)
            go_left = pairs[..., 0] - pairs[..., 1] > self.thresholds[level]
            node = np.zeros((len(boxes), len(trees)), np.intp)
            for _ in range(self._depth):
                node = 2 * node + 2 - go_left[faces, trees, node]
            leaf = node - go_left.shape[2]
            shape += self.leaf_values[level, trees, leaf].sum(axis=1)
        return origin + shape.astype(np.float64) * extent

    def _similarity_from_initial(self, shapes: np.ndarray) -> np.ndarray:
        """(N, 2, 2) float32 linear part of the least-squares similarity initial → each shape.

        dlib solves this with Umeyama's SVD; without reflection in 2-D it is the closed form
        ``[[a, -b], [b, a]]``.
        """
        source = self._initial_centred
        target = shapes.astype(np.float64)
        target -= target.mean(1, keepdims=True)
        a = np.einsum("pd,npd->n", source, target) / self._initial_spread
        b = (source[:, 0] * target[..., 1] - source[:, 1] * target[..., 0]).sum(1)
        b /= self._initial_spread
        return np.stack([np.stack([a, -b], 1), np.stack([b, a], 1)], 1).astype(np.float32)


_NPZ_ARRAYS = ("initial_shape", "anchors", "deltas", "split_pixels", "thresholds", "leaf_values")


def _as_pixels(image: np.ndarray) -> np.ndarray:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
    ):
        raise ValueError(
            f"expected an H×W or H×W×3 uint8 image, got "
            f"{getattr(image, 'dtype', type(image))} {np.shape(image)}"
        )
    return image


def _read(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dlib's grey level (float32) at integer pixels, 0 outside the image. Only the pixels read
    are converted to grey: (r + g + b) // 3, as dlib's ``assign_pixel`` does."""
    height, width = image.shape[:2]
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    found = image[np.where(inside, y, 0), np.where(inside, x, 0)]
    if found.ndim == x.ndim + 1:
        found = found.sum(-1, dtype=np.uint16) // 3
    return np.where(inside, found, 0).astype(np.float32)


def _parse(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a serialised ``dlib::shape_predictor`` (version 1): initial shape, forests
    (a vector per cascade level of trees: splits, then leaf vectors), anchors, deltas."""
    reader = _Reader(data)
    version = reader.integer("the shape predictor's version")
    if version != 1:
        raise DlibFormatError(f"not a dlib shape predictor (version {version}, expected 1)")
    initial = _column(reader, "the initial shape")
    if len(initial) % 2:
        raise DlibFormatError(f"the initial shape has an odd length {len(initial)}")

    levels: list[tuple[list, list, list]] = []
    for level in range(reader.count("the number of cascade levels")):
        splits, thresholds, leaves = [], [], []
        for _ in range(reader.count("the number of trees")):
            tree = []
            for _ in range(reader.count("the number of splits")):
                tree.append((reader.count("a split pixel"), reader.count("a split pixel")))
                thresholds.append(reader.real("a split threshold"))
            splits.append(tree)
            count = reader.count("the number of leaves")
            leaves.append([_column(reader, "a leaf value") for _ in range(count)])
        if len({len(tree) for tree in splits}) > 1 or len({len(tree) for tree in leaves}) > 1:
            raise DlibFormatError(f"cascade level {level} has trees of different sizes")
        levels.append((splits, thresholds, leaves))
    anchors = [
        [reader.count("an anchor") for _ in range(reader.count("the number of anchors"))]
        for _ in range(reader.count("the number of anchor lists"))
    ]
    deltas = [
        [
            (reader.real("a delta"), reader.real("a delta"))
            for _ in range(reader.count("the number of deltas"))
        ]
        for _ in range(reader.count("the number of delta lists"))
    ]
    if reader.offset != len(data):
        raise DlibFormatError(f"{len(data) - reader.offset} unexpected bytes after the model")
    if len({len(levels), len(anchors), len(deltas)}) != 1 or not levels:
        raise DlibFormatError(
            f"{len(levels)} cascade levels but {len(anchors)} anchor and {len(deltas)} delta lists"
        )
    try:
        trees = len(levels[0][0])
        return {
            "initial_shape": np.reshape(initial, (-1, 2)),
            "anchors": np.array(anchors),
            "deltas": np.array(deltas),
            "split_pixels": np.array([s for s, _, _ in levels]).reshape(len(levels), trees, -1, 2),
            "thresholds": np.array([t for _, t, _ in levels]).reshape(len(levels), trees, -1),
            "leaf_values": np.array([v for _, _, v in levels]).reshape(
                len(levels), trees, -1, len(initial) // 2, 2
            ),
        }
    except ValueError as error:  # ragged: levels or leaves of different sizes
        raise DlibFormatError(f"unsupported layout: {error}") from None


def _column(reader: _Reader, what: str) -> list[float]:
    """A ``matrix<float,0,1>``: its dimensions negated (dlib's current format), then values."""
    rows, cols = reader.integer(what), reader.integer(what)
    if rows > 0 or cols != -1:
        raise DlibFormatError(f"{what} is not a column vector ({rows}×{cols}) at {reader.offset}")
    return [reader.real(what) for _ in range(-rows)]


def chip_transform_5pt(points: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """The 2×3 affine map from image pixels to the pixels of dlib's ``size``² face chip.

    ``points`` (5, 2) are the predictor's five landmarks (in its order). This is
    ``dlib.get_face_chip_details(shape, size, padding)`` followed by ``get_mapping_to_chip``:
    the similarity that best maps dlib's mean face onto the points gives the chip's angle, scale
    and centre; the chip's rectangle, ``size · scale - 1`` pixels a side (dlib's
    ``centered_drect``), turned by the angle, then maps its corners onto pixels 0 and size - 1.
    """
    points = np.asarray(points, np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected five finite points (5, 2), got {np.shape(points)}")
    template = (padding + DLIB_MEAN_FACE_5) / (2 * padding + 1) * size
    source, target = template - template.mean(0), points - points.mean(0)
    spread = (source**2).sum()
    a = (source * target).sum() / spread
    b = (source[:, 0] * target[:, 1] - source[:, 1] * target[:, 0]).sum() / spread
    centre = np.array([[a, -b], [b, a]]) @ (size / 2 - template.mean(0)) + points.mean(0)
    scale, angle = math.hypot(a, b), math.atan2(b, a)
    stretch = (size - 1) / (size * scale - 1)
    cos, sin = math.cos(angle), math.sin(angle)
    linear = stretch * np.array([[cos, sin], [-sin, cos]])
    return np.hstack([linear, ((size - 1) / 2 - linear @ centre)[:, None]])
