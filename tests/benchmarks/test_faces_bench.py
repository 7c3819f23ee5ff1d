"""``campusgate bench faces`` survives bad images and reports both stacks' figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

PHOTOS = {
    "obama": [
        "face_recognition/by_identity/obama/obama.jpg",
        "face_recognition/by_identity/obama/obama2.jpg",
    ],
    "biden": [
        "face_recognition/by_identity/biden/biden.jpg",
        "face_recognition/by_identity/biden/biden2.jpg",
    ],
    "angelina": [
        "deepface/by_identity/id01_angelina/img1.jpg",
        "deepface/by_identity/id03_img8/img47.jpg",
    ],  # WebP named .jpg, other person
}


def _tree(faces_dir: Path, root: Path) -> Path:
    data = root / "by_identity"
    for person, photos in PHOTOS.items():
        (data / person).mkdir(parents=True)
        for photo in photos:
            shutil.copy(faces_dir / photo, data / person / Path(photo).name)
    odd = data / "odd"
    odd.mkdir()
    (odd / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (odd / "notes.txt").write_text("not an image")
    cv2.imwrite(str(odd / "tiny.png"), np.zeros((5, 5), np.uint8))
    rgba = cv2.imread(str(faces_dir / PHOTOS["obama"][0]))
    cv2.imwrite(str(odd / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_BGR2BGRA))
    return data


def test_bench_counts_bad_images_and_compares_with_dlib(faces_dir, default_pack, tmp_path):
    data = _tree(faces_dir, tmp_path)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "campusgate"),
            "bench",
            "faces",
            "--data",
            str(data),
            "--models-dir",
            str(default_pack.root.parent),
            "--json",
        ],
        capture_output=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    figures = json.loads(result.stdout)
    assert figures["images"] == 10 and figures["bad_images"] == 2  # corrupt.jpg, notes.txt
    assert figures["faces_found"] >= 7  # six portraits and the RGBA copy; tiny has none
    for key in (
        "verification_accuracy",
        "tar",
        "far",
        "ms_detect_p50",
        "ms_embed_p50",
        "ms_match_10k_p50",
        "rss_mb",
        "pairs",
        "threshold",
    ):
        assert figures[key] is not None, key
    assert figures["dlib"]["ms_embed_p50"] > 0 and figures["ratios"]["embed_speedup"] > 0
    assert figures["pairs"] == figures["dlib"]["pairs"] > 0
