"""Packs are found by name, checked by hash, and installed atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.packs import (
    MANIFEST,
    DetectorSpec,
    PackError,
    PackManifest,
    QualitySpec,
    RecogniserSpec,
    default_models_dir,
    file_entries,
    install_pack,
    installed_packs,
    load_pack,
    remove_pack,
)


def _builder(name: str = "tiny", payload: bytes = b"weights"):
    def build(staging: Path) -> PackManifest:
        (staging / "det.onnx").write_bytes(payload + b"-det")
        (staging / "rec.onnx").write_bytes(payload + b"-rec")
        return PackManifest(
            name=name,
            version="1",
            licence="test",
            source="built by the test",
            detector=DetectorSpec(kind="scrfd", files={"model": "det.onnx"}, score_threshold=0.5),
            recogniser=RecogniserSpec(
                kind="arcface",
                file="rec.onnx",
                alignment="arcface-112",
                input_size=(112, 112),
                embedding_size=512,
            ),
            match_threshold=0.35,
            quality=QualitySpec(
                min_face_px=40,
                min_sharpness=20,
                max_yaw_deg=40,
                max_pitch_deg=30,
                min_detector_score=0.6,
            ),
            files=file_entries(staging, ["det.onnx", "rec.onnx"]),
        )

    return build


def test_installed_pack_loads_with_verified_files(tmp_path: Path) -> None:
    installed = install_pack(tmp_path, _builder())
    loaded = load_pack("tiny", tmp_path)
    assert loaded.manifest == installed.manifest
    assert loaded.path("det.onnx").read_bytes() == b"weights-det"
    assert [name for name, _ in installed_packs(tmp_path)] == ["tiny"]


def test_a_changed_file_is_refused(tmp_path: Path) -> None:
    install_pack(tmp_path, _builder())
    (tmp_path / "tiny" / "rec.onnx").write_bytes(b"tampered")
    with pytest.raises(PackError, match=r"rec.onnx has sha256 .* reinstall the pack"):
        load_pack("tiny", tmp_path)
    (tmp_path / "tiny" / "rec.onnx").unlink()
    with pytest.raises(PackError, match="rec.onnx is missing"):
        load_pack("tiny", tmp_path)


def test_missing_and_malformed_packs_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="not installed .* gatectl models install nope"):
        load_pack("nope", tmp_path)
    install_pack(tmp_path, _builder())
    manifest = json.loads((tmp_path / "tiny" / MANIFEST).read_text())
    manifest["files"][0]["path"] = "../../etc/passwd"
    (tmp_path / "tiny" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="must be a relative path inside the pack"):
        load_pack("tiny", tmp_path)
    (tmp_path / "junk").mkdir()
    listing = dict(installed_packs(tmp_path))
    assert isinstance(listing["junk"], PackError) and isinstance(listing["tiny"], PackError)


def test_files_the_engine_uses_must_be_hashed(tmp_path: Path) -> None:
    install_pack(tmp_path, _builder())
    manifest = json.loads((tmp_path / "tiny" / MANIFEST).read_text())
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "det.onnx"]
    (tmp_path / "tiny" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="does not list with a hash: \\['det.onnx'\\]"):
        load_pack("tiny", tmp_path)


def test_only_the_shape_predictor_alignment_takes_a_landmark_model() -> None:
    common = {"kind": "dlib-resnet", "file": "r.onnx", "input_size": (150, 150)}
    with pytest.raises(ValueError, match="alignment_file is required with alignment 'dlib-5pt'"):
        RecogniserSpec(**common, alignment="dlib-5pt", embedding_size=128)
    with pytest.raises(ValueError, match="and only then"):
        RecogniserSpec(**common, alignment="dlib-150", alignment_file="sp.npz", embedding_size=128)
    spec = RecogniserSpec(**common, alignment="dlib-5pt", alignment_file="sp.npz", embedding_size=8)
    assert spec.alignment_file == "sp.npz"


def test_the_landmark_model_must_be_hashed_too(tmp_path: Path) -> None:
    install_pack(tmp_path, _builder())
    manifest = json.loads((tmp_path / "tiny" / MANIFEST).read_text())
    manifest["recogniser"].update(alignment="dlib-5pt", alignment_file="sp.npz")
    (tmp_path / "tiny" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PackError, match="does not list with a hash: \\['sp.npz'\\]"):
        load_pack("tiny", tmp_path)


def test_a_failed_install_keeps_the_previous_version(tmp_path: Path) -> None:
    install_pack(tmp_path, _builder(payload=b"v1"))

    def broken(staging: Path) -> PackManifest:
        manifest = _builder(payload=b"v2")(staging)
        (staging / "rec.onnx").write_bytes(b"corrupted after hashing")
        return manifest

    with pytest.raises(PackError):
        install_pack(tmp_path, broken)
    assert load_pack("tiny", tmp_path).path("det.onnx").read_bytes() == b"v1-det"
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no staging debris

    install_pack(tmp_path, _builder(payload=b"v2"))
    assert load_pack("tiny", tmp_path).path("det.onnx").read_bytes() == b"v2-det"
    remove_pack("tiny", tmp_path)
    assert installed_packs(tmp_path) == []


def test_models_dir_follows_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAMPUSGATE_MODELS", str(tmp_path / "m"))
    assert default_models_dir() == tmp_path / "m"
    monkeypatch.delenv("CAMPUSGATE_MODELS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_models_dir() == tmp_path / "data" / "campusgate" / "models"
