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

from models.align import warp_chips
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


#: Side of dlib's HOG face box over sqrt(eye-to-mouth × eye-to-eye distance) of the detector's
#: five landmarks (:func:`dlib_box_from_landmarks`).
HOG_BOX_SCALE = 2.32


def dlib_box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The box (N, 4) that dlib's HOG detector would draw round each face with these (N, 5, 2)
    detector landmarks (eye centres, nose, mouth corners, as in ``LANDMARK_NAMES``).

    The predictor was trained on HOG boxes, which sit lower and tighter than MTCNN's. Derived by
    matching MTCNN's faces to dlib's HOG boxes on the 538 shared dev photos where both find one:
    the HOG box is square, centred on the midpoint of the eyes' centre and the mouth's centre
    (their median offset, 0.3 % of the side, is dropped), and its side is
    :data:`HOG_BOX_SCALE` times sqrt(eye-to-mouth × eye-to-eye distance) (the median ratio;
    it spreads by 8 %, as HOG's own scale steps do). Fed these boxes, the predictor's points
    cut dlib's chip so that dlib's own points land 0.47 chip pixels on average from where they
    land in dlib's chip (from dlib's own HOG box: 0.32, as dlib rounds its points to whole
    pixels; ``models.align``'s fit of MTCNN's points: 1.78). Tuning the three numbers to that
    error directly gained 0.02 px.
    """
    points = np.asarray(landmarks, np.float64)
    if points.ndim != 3 or points.shape[1:] != (5, 2) or not np.isfinite(points).all():
        raise ValueError(f"expected finite landmarks of shape (N, 5, 2), got {points.shape}")
    eyes, mouth = points[:, :2].mean(1), points[:, 3:].mean(1)
    centre = (eyes + mouth) / 2
    eye_to_mouth = np.linalg.norm(mouth - eyes, axis=1)
    eye_to_eye = np.linalg.norm(points[:, 1] - points[:, 0], axis=1)
    half = HOG_BOX_SCALE * np.sqrt(eye_to_mouth * eye_to_eye)[:, None] / 2
    return np.hstack([centre - half, centre + half])


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

    Raises ``ValueError`` if the arrays do not fit together, are not finite, or the trees are
    deeper than 4 levels (dlib's default, that of its published models).
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
        if not 2 <= leaves <= 16 or leaves & splits:
            raise ValueError(
                f"trees must be full binary trees of 1 to 4 levels, not {leaves} leaves"
            )
        if ((self.anchors < 0) | (self.anchors >= points)).any():
            raise ValueError(f"anchors must index the {points} landmarks")
        if ((self.split_pixels < 0) | (self.split_pixels >= features)).any():
            raise ValueError(f"split pixels must index the {features} feature pixels")
        floats = (self.initial_shape, self.deltas, self.thresholds, self.leaf_values)
        if not all(np.isfinite(array).all() for array in floats):
            raise ValueError("the model holds numbers that are not finite")

        # The same model, laid out for predict.
        self._similarity = _similarity_weights(self.initial_shape)
        self._deltas_by_axis = np.ascontiguousarray(self.deltas.transpose(0, 2, 1))  # (C, 2, F)
        self._anchor_coords = np.concatenate([2 * self.anchors, 2 * self.anchors + 1], axis=1)
        self._split_pairs = np.concatenate(
            [
                self.split_pixels[..., 0].reshape(levels, -1),
                self.split_pixels[..., 1].reshape(levels, -1),
            ],
            axis=1,
        )
        # Grey levels are whole numbers, so "difference > threshold" is "> floor(threshold)";
        # in int16, which every difference of two grey levels fits.
        self._split_floors = np.clip(np.floor(self.thresholds), -256, 256).astype(np.int16)
        self._split_floors = self._split_floors.reshape(levels, -1)
        self._decision_weights = 2.0 ** np.arange(splits, dtype=np.float32)
        self._leaf_of_decisions = _leaf_table(splits)
        self._tree_rows = np.arange(trees) * leaves
        self._leaf_rows = self.leaf_values.reshape(levels, trees * leaves, points * 2)

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

        ``image`` is H×W uint8 grey or H×W×3 uint8 colour (RGB or BGR alike: dlib's grey level
        is the plain mean of the three channels); a non-contiguous one is copied first. A box
        ``x1, y1, x2, y2`` is where the unit square's corners (0, 0) and (1, 1) land, as dlib's
        ``rectangle`` ``left, top, right, bottom``: pass those to get what
        ``dlib.shape_predictor(image, rect)`` gives, whose points are whole pixels,
        ``floor(p + 0.5)`` of the sub-pixel points returned here.
        """
        image = _as_pixels(image)
        boxes = np.asarray(boxes, np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
            raise ValueError(f"expected finite boxes of shape (N, 4), got {np.shape(boxes)}")
        faces, points = len(boxes), len(self.initial_shape)
        features = self.anchors.shape[1]
        origin, extent = boxes[:, :2], boxes[:, 2:] - boxes[:, :2]
        # Feature pixels are laid out x of each, then y of each: (N, 2F).
        scale = np.repeat(extent, features, axis=1)
        nearest = np.repeat(origin + 0.5, features, axis=1)  # floor(p + 0.5), dlib's rounding
        height, width = image.shape[:2]
        limits = np.repeat(np.array([width, height], np.uintp), features)
        pixels = image.reshape(height * width, -1)
        channel_sum = np.ones(pixels.shape[1], np.float32)
        grey_of = _GREY_OF_SUM if image.ndim == 3 else _GREY_OF_GREY
        pairs = self._split_floors.shape[1]
        # Row 0 holds the shape, rows 1… each tree's leaf, for the sum below.
        steps = np.empty((faces, len(self._tree_rows) + 1, points * 2), np.float32)
        shape = np.repeat(self.initial_shape.reshape(1, -1), faces, axis=0)
        for level in range(len(self._leaf_rows)):
            # dlib's float32 arithmetic, step for step (a fused or reordered sum rounds
            # differently, and 0.4 % of faces then end a pixel away from dlib's points):
            # M = [[a, -b], [b, a]] the similarity initial → current shape, then
            # M · delta + anchor for every feature pixel.
            similarity = (shape @ self._similarity).astype(np.float32)[:, _ROTATION] * _SIGNS
            products = similarity[..., None] * self._deltas_by_axis[level]  # (N, 2, 2, F)
            offsets = (products[:, :, 0] + products[:, :, 1]).reshape(faces, 2 * features)
            placed = (offsets + shape.take(self._anchor_coords[level], axis=1)).astype(np.float64)
            placed *= scale
            placed += nearest
            where = np.floor(placed, out=placed).astype(np.intp)
            within = where.view(np.uintp) < limits  # negative coordinates wrap round to huge
            inside = within[:, :features] & within[:, features:]
            # Read (clipped: outside pixels are masked next), sum the channels, look up grey.
            index = where[:, features:] * width + where[:, :features]
            total = pixels.take(index, axis=0, mode="clip").astype(np.float32) @ channel_sum
            values = grey_of.take(np.where(inside, total.astype(np.intp), len(grey_of) - 1))
            compared = values.take(self._split_pairs[level], axis=1)
            go_left = compared[:, :pairs] - compared[:, pairs:] > self._split_floors[level]
            decisions = go_left.reshape(faces, *self.thresholds.shape[1:]).astype(np.float32)
            leaves = self._leaf_of_decisions.take(
                (decisions @ self._decision_weights).astype(np.intp)
            )
            steps[:, 0] = shape
            self._leaf_rows[level].take(leaves + self._tree_rows, axis=0, out=steps[:, 1:])
            # dlib adds the trees' leaves to the shape one after another in float32. Summing
            # along a slow axis NumPy does the same; a pairwise sum rounds differently, and
            # those 1e-7 move enough pixel reads to a neighbour that one face in sixteen ends
            # a pixel or two away from dlib's points.
            shape = steps.sum(axis=1)
        return (
            origin[:, None] + shape.reshape(faces, points, 2).astype(np.float64) * extent[:, None]
        )


_NPZ_ARRAYS = ("initial_shape", "anchors", "deltas", "split_pixels", "thresholds", "leaf_values")
#: dlib's grey level of a pixel from the sum of its channels, (r + g + b) // 3 (``assign_pixel``),
#: or of a grey pixel; the extra last entry, 0, is what a pixel outside the image reads.
_GREY_OF_SUM = np.append(np.arange(3 * 255 + 1) // 3, 0).astype(np.int16)
_GREY_OF_GREY = np.append(np.arange(256), 0).astype(np.int16)
#: (a, b) → [[a, -b], [b, a]]
_ROTATION = np.array([[0, 1], [1, 0]])
_SIGNS = np.array([[1, -1], [1, 1]], np.float32)


def _similarity_weights(source: np.ndarray) -> np.ndarray:
    """(2P, 2) W such that ``target.ravel() @ W`` is ``(a, b)``: ``[[a, -b], [b, a]]`` (and a
    shift) is the least-squares similarity from the points ``source`` (P, 2) to ``target``
    (P, 2); ``ravel`` lays points out ``x0, y0, x1, …``.

    dlib finds it with Umeyama's SVD (``find_similarity_transform``); in 2-D and without
    reflection that is this closed form, linear in the target (which need not be centred, as
    the centred source sums to zero).
    """
    source = np.asarray(source, np.float64)
    centred = source - source.mean(0)
    perpendicular = np.stack([-centred[:, 1], centred[:, 0]], axis=1)
    return np.stack([centred.ravel(), perpendicular.ravel()], axis=1) / (centred**2).sum()


def _leaf_table(splits: int) -> np.ndarray:
    """Which leaf a tree ends in, for each of the 2**splits ways its splits can decide.

    Bit i of the index is split i's decision (1: go left, to child 2i + 1). One lookup then
    replaces walking each tree down level by level.
    """
    decisions = (np.arange(2**splits)[:, None] >> np.arange(splits)) & 1
    node = np.zeros(2**splits, np.intp)
    for _ in range(splits.bit_length()):
        node = 2 * node + 2 - decisions[np.arange(2**splits), node]
    return node - splits


def _as_pixels(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous array (copied only if it is not one), or ``ValueError``."""
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3))
        or image.size == 0
    ):
        raise ValueError(
            f"expected a non-empty H×W or H×W×3 uint8 image, got "
            f"{getattr(image, 'dtype', type(image))} {np.shape(image)}"
        )
    return np.ascontiguousarray(image)


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
    a, b = points.ravel() @ _similarity_weights(template)
    centre = np.array([[a, -b], [b, a]]) @ (size / 2 - template.mean(0)) + points.mean(0)
    scale, angle = math.hypot(a, b), math.atan2(b, a)
    stretch = (size - 1) / (size * scale - 1)
    linear = stretch * np.array(
        [[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]]
    )
    return np.hstack([linear, ((size - 1) / 2 - linear @ centre)[:, None]])


def dlib_chips(
    predictor: ShapePredictor,
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int = 150,
    padding: float = 0.25,
) -> np.ndarray:
    """dlib's ``size``² chips (N, size, size, 3) of the faces whose detector landmarks
    (N, 5, 2) are given: each face's HOG-like box (:func:`dlib_box_from_landmarks`), dlib's five
    points placed in it by ``predictor``, and the chip cut from them as ``dlib.get_face_chip``
    cuts it. ``image`` is H×W×3 uint8."""
    if len(landmarks) == 0:
        return np.empty((0, size, size, 3), np.uint8)
    points = predictor.predict(image, dlib_box_from_landmarks(landmarks))
    transforms = np.stack([chip_transform_5pt(face, size, padding) for face in points])
    return warp_chips(image, transforms, size)
