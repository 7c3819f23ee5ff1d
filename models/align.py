"""Face alignment: warp a face onto the chip a recogniser was trained on, from five landmarks.

Landmarks are the detectors' five points (``models.detectors.detections.LANDMARK_NAMES``): left
eye, right eye, nose, left and right mouth corner, as seen in the image, in image pixels. A
:class:`ChipGeometry` says where those points belong in the chip; :func:`align` fits the
similarity transform (rotation, uniform scale, shift) that best maps the landmarks onto it and
resamples the face with it. :func:`warp_chips` does the resampling for any image → chip map,
so ``models.shape_predictor``'s dlib geometry cuts its chips the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class ChipGeometry:
    """Where the five landmarks go in a ``size``×``size`` chip, and how much each counts.

    ``template`` is (5, 2) ``x, y`` chip pixels. ``weights`` (5,) weigh the least-squares fit:
    points that land in a consistent place get more say than those that move with pose and
    expression. ``padding`` is the margin around the face as the recogniser's authors define it
    (informative; the template already encodes it).
    """

    size: int
    padding: float
    template: np.ndarray
    weights: np.ndarray


#: dlib's ResNet chip: what ``dlib.get_face_chip(image, shape, size=150, padding=0.25)`` cuts
#: from dlib's own 5-point landmarks (eye corners and nose base, which MTCNN does not give).
#: Derived by ``python -m benchmarks.dlib_reference``: on 522 faces of the shared dev photos,
#: MTCNN's five landmarks of each face dlib found were mapped into dlib's chip of that face and
#: averaged. The weights are the inverse of each point's variance there (standard deviations
#: 2.1, 2.2, 5.7, 5.9, 5.8 px), scaled so the eyes weigh about 1: the eyes place the chip, the
#: nose and mouth, which move with expression and pose, only steady it.
DLIB_150 = ChipGeometry(
    size=150,
    padding=0.25,
    template=np.array(
        [[47.24, 45.92], [102.00, 45.63], [74.25, 76.32], [50.74, 101.96], [98.70, 101.83]]
    ),
    weights=np.array([1.08, 0.92, 0.14, 0.13, 0.14]),
)


def similarity_transforms(
    landmarks: np.ndarray, template: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """The weighted least-squares similarity transforms from ``landmarks`` to ``template``.

    ``landmarks`` is (N, K, 2) or (K, 2); the result is (N, 2, 3) or (2, 3) affine matrices
    mapping image pixels to chip pixels (Umeyama's closed form, without reflections).
    Raises ``ValueError`` if the landmarks are not finite or all coincide.
    """
    points = np.asarray(landmarks, np.float64)
    single = points.ndim == 2
    points = points[None] if single else points
    if points.ndim != 3 or points.shape[1:] != template.shape or not np.isfinite(points).all():
        raise ValueError(
            f"expected finite landmarks of shape (N,) {template.shape}, got {np.shape(landmarks)}"
        )
    w = np.ones(len(template)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()

    src_mean = np.einsum("k,nkd->nd", w, points)
    dst_mean = w @ template
    src, dst = points - src_mean[:, None], template - dst_mean
    covariance = np.einsum("k,kd,nke->nde", w, dst, src)  # Σ w · dst ⊗ src, per face
    spread = np.einsum("k,nkd,nkd->n", w, src, src)
    if (spread <= 1e-12).any():
        raise ValueError("the landmarks of a face all coincide")
    u, s, vt = np.linalg.svd(covariance)
    # A reflection would mirror the face; flip the weakest axis instead (Umeyama's D matrix).
    d = np.ones((len(points), 2))
    d[:, 1] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    rotation = u @ (d[:, :, None] * vt)
    scale = (s * d).sum(1) / spread
    linear = scale[:, None, None] * rotation
    shift = dst_mean - np.einsum("nde,ne->nd", linear, src_mean)
    transforms = np.concatenate([linear, shift[:, :, None]], axis=2)
    return transforms[0] if single else transforms


def align(
    image: np.ndarray, landmarks: np.ndarray, geometry: ChipGeometry = DLIB_150
) -> np.ndarray:
    """The ``geometry.size``² × 3 uint8 chip of the face with these (5, 2) ``landmarks``.

    ``image`` is H×W×3 uint8 (RGB for the recognisers here). Parts of the chip outside the image
    are black, as in dlib's chips.
    """
    return align_faces(image, np.asarray(landmarks)[None], geometry)[0]


def align_faces(
    image: np.ndarray, landmarks: np.ndarray, geometry: ChipGeometry = DLIB_150
) -> np.ndarray:
    """Chips of every face in one image: (N, size, size, 3) uint8 from (N, 5, 2) landmarks."""
    transforms = similarity_transforms(landmarks, geometry.template, geometry.weights)
    return warp_chips(image, transforms, geometry.size)


def warp_chips(image: np.ndarray, transforms: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size, 3) uint8 chips resampled from ``image`` through (N, 2, 3) image → chip
    affine maps, whichever way they were found (a template fit, dlib's chip geometry)."""
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
        or image.size == 0
    ):
        raise ValueError(
            f"expected a non-empty H×W×3 uint8 image, got "
            f"{getattr(image, 'dtype', type(image))} {np.shape(image)}"
        )
    chips = np.empty((len(transforms), size, size, 3), np.uint8)
    for chip, transform in zip(chips, transforms, strict=True):
        _warp(image, transform, chip)
    return chips


def _warp(image: np.ndarray, transform: np.ndarray, chip: np.ndarray) -> None:
    """Resample ``image`` into ``chip`` through ``transform`` (image → chip pixels), bilinearly.

    Bilinear sampling of a face more than twice the chip's size would alias (skip pixels), so
    the face is first halved with a Gaussian pyramid until it is at most twice as large — what
    dlib's ``extract_image_chips`` does. Only the chip's footprint is cropped and halved, so the
    cost follows the face's size, not the photo's.
    """
    size = chip.shape[0]
    pixels_per_chip_pixel = 1.0 / math.sqrt(abs(np.linalg.det(transform[:, :2])))
    halvings = max(0, math.ceil(math.log2(pixels_per_chip_pixel)) - 1)
    source, to_chip = image, np.vstack([transform, [0.0, 0.0, 1.0]])
    if halvings:
        to_image = np.linalg.inv(to_chip)
        corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
        footprint = corners @ to_image[:2].T
        margin = 2 ** (halvings + 2)  # the pyramid filter's reach at the original scale
        height, width = image.shape[:2]
        x0, y0 = np.clip(np.floor(footprint.min(0)).astype(int) - margin, 0, (width, height))
        x1, y1 = np.clip(np.ceil(footprint.max(0)).astype(int) + margin, 0, (width, height))
        source, done = image[y0:y1, x0:x1], 0
        while done < halvings and min(source.shape[:2]) >= 2:
            source, done = cv2.pyrDown(source), done + 1
        factor = 2.0**done  # pyrDown's pixel i sits on pixel 2i of its input
        to_chip = to_chip @ np.array([[factor, 0, x0], [0, factor, y0], [0, 0, 1]])
    if source.size == 0:  # the face lies wholly outside the image
        chip[:] = 0
        return
    cv2.warpAffine(
        source,
        to_chip[:2],
        (size, size),
        dst=chip,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
