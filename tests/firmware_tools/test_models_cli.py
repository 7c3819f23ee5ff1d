"""``gatectl models``: install the default pack and an InsightFace one, list, verify, remove."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.models.tiny_onnx import write_buffalo_like

GATECTL = Path(sys.executable).parent / "gatectl"


def gatectl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GATECTL), "models", *args], capture_output=True, timeout=300)


def test_default_pack_installs_verifies_and_is_refused_once_changed(tmp_path: Path) -> None:
    models = str(tmp_path / "models")
    first = gatectl("install", "dlib-r29-mtcnn", "--models-dir", models)
    assert first.returncode == 0, first.stderr.decode()
    again = gatectl("install", "dlib-r29-mtcnn", "--if-missing", "--models-dir", models)
    assert again.returncode == 0 and b"is installed" in again.stderr

    listing = json.loads(gatectl("list", "--json", "--models-dir", models).stdout)
    assert [(p["name"], p["detector"], p["embedding_size"]) for p in listing] == [
        ("dlib-r29-mtcnn", "mtcnn", 128)
    ]
    assert gatectl("verify", "--models-dir", models).returncode == 0

    onnx = tmp_path / "models" / "dlib-r29-mtcnn" / "dlib_resnet_v1.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    failed = gatectl("verify", "--models-dir", models)
    assert failed.returncode == 1 and b"dlib_resnet_v1.onnx has sha256" in failed.stderr
    repaired = gatectl("install", "dlib-r29-mtcnn", "--if-missing", "--models-dir", models)
    assert repaired.returncode == 0 and gatectl("verify", "--models-dir", models).returncode == 0

    assert gatectl("remove", "dlib-r29-mtcnn", "--models-dir", models).returncode == 0
    assert json.loads(gatectl("list", "--json", "--models-dir", models).stdout) == []


def test_insightface_pack_installs_from_a_zip_and_bad_sources_are_refused(tmp_path: Path) -> None:
    folder = write_buffalo_like(tmp_path / "buffalo_l")
    archive = tmp_path / "buffalo_l.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, f"buffalo_l/{path.name}")
    models = str(tmp_path / "models")
    installed = gatectl("install", str(archive), "--models-dir", models)
    assert installed.returncode == 0, installed.stderr.decode()
    listing = json.loads(gatectl("list", "--json", "--models-dir", models).stdout)
    assert [(p["name"], p["detector"], p["recogniser"]) for p in listing] == [
        ("buffalo_l", "scrfd", "arcface")
    ]

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.onnx", b"x")
    refused = gatectl("install", str(evil), "--models-dir", models)
    assert refused.returncode == 1 and b"refused" in refused.stderr
    assert not (tmp_path / "escape.onnx").exists()

    no_recogniser = tmp_path / "half"
    no_recogniser.mkdir()
    shutil.copy(folder / "det_10g.onnx", no_recogniser)
    assert gatectl("install", str(no_recogniser), "--models-dir", models).returncode == 1
    unknown = gatectl("install", "no-such-pack", "--models-dir", models)
    assert unknown.returncode == 2 and b"no pack named" in unknown.stderr
