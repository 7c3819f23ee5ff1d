"""Gallery updates: verified ones swap in and persist; anything wrong is refused, old one kept."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.gallery_signing import sign
from broker.payloads import GalleryNotice, utc_now
from edge.fetch import https_fetcher
from edge.gallery_store import GalleryStore
from models.gallery import Gallery
from models.gallery_delta import DeltaRow, DeltaStep, GalleryChange, GalleryDelta, apply_change

PACK = "dlib-r29-mtcnn"


class Files(http.server.BaseHTTPRequestHandler):
    """Serves ``files[path]`` to requests with the right basic-auth credential."""

    files: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Basic c2Nob29sLWEuZ2F0ZS0xOnMzY3JldA==":
            self.send_error(401)
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _gallery(version: int, pack: str = PACK) -> bytes:
    gallery = Gallery(pack=pack, dim=128, threshold=0.9)
    rng = np.random.default_rng(version)
    for _ in range(version):
        gallery.add(f"HS{rng.integers(1e6):06d}", rng.standard_normal((2, 128)))
    return gallery.to_bytes()


def _publish(server: str, key, name: str, data: bytes, version: int, **overrides):
    Files.files[f"/{name}"] = data
    fields = dict(
        site="school-a",
        version=version,
        model_pack=PACK,
        entries=2 * version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        key_id="k1",
    )
    fields |= overrides
    return GalleryNotice(
        **fields, ts=utc_now(), url=f"{server}/{name}", signature=sign(key, **fields)
    )


def _store(tmp_path: Path, key) -> GalleryStore:
    fetch = https_fetcher("school-a.gate-1", "s3cret", None)
    return GalleryStore(tmp_path / "gallery.cggal", PACK, key.public_key(), fetch)


def test_a_verified_update_is_swapped_in_and_survives_a_restart(server, tmp_path) -> None:
    key = Ed25519PrivateKey.generate()
    store = _store(tmp_path, key)
    assert store.current() is None
    assert store.apply(_publish(server, key, "g3", _gallery(3), 3))
    assert store.version == 3 and len(store.current()) == 6
    assert not store.apply(_publish(server, key, "g3", _gallery(3), 3))  # retained repeat

    restarted = _store(tmp_path, key)
    assert restarted.load_last_good().version == 3


def _next_version(base: bytes, embedding: np.ndarray) -> tuple[bytes, GalleryDelta]:
    """The gallery after the server adds one student's template to ``base``, as it publishes
    (apply_change), and the delta it would serve a gate holding ``base``."""
    gallery = Gallery.from_bytes(base)
    since = gallery.version
    change = GalleryChange(add=(("e-new", "HS999999"),))
    apply_change(gallery, change, embedding.reshape(1, -1).astype(np.float32))
    data = gallery.to_bytes()
    row = DeltaRow(
        entry="e-new",
        person="HS999999",
        embedding=base64.b64encode(embedding.astype("<f4").tobytes()).decode(),
    )
    delta = GalleryDelta(
        site="school-a",
        model_pack=PACK,
        since=since,
        version=gallery.version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        steps=[DeltaStep(version=gallery.version, remove=[], add=[row], cards=None)],
    )
    return data, delta


def test_a_delta_alone_updates_a_gate_that_holds_the_previous_version(server, tmp_path) -> None:
    key = Ed25519PrivateKey.generate()
    store = _store(tmp_path, key)
    base = _gallery(2)
    assert store.apply(_publish(server, key, "g2", base, 2))
    data, delta = _next_version(base, np.random.default_rng(7).standard_normal(128))
    notice = _publish(server, key, "g3", data, delta.version)
    del Files.files["/g3"]  # only the delta is there to fetch
    Files.files["/g3?since=2"] = delta.model_dump_json().encode()
    assert store.apply(notice)
    assert (store.by_file, store.by_delta) == (1, 1)
    assert store.path.read_bytes() == data and "HS999999" in store.current().persons


def test_a_delta_that_does_not_rebuild_the_announced_file_costs_one_request(
    server, tmp_path
) -> None:
    """A delta is not signed: what it rebuilds must be the notice's file, or the gate fetches
    the file itself."""
    key = Ed25519PrivateKey.generate()
    store = _store(tmp_path, key)
    base = _gallery(2)
    assert store.apply(_publish(server, key, "g2", base, 2))
    rng = np.random.default_rng(7)
    data, _ = _next_version(base, rng.standard_normal(128))
    _, forged = _next_version(base, rng.standard_normal(128))  # another template
    notice = _publish(server, key, "g3", data, 3)
    Files.files["/g3?since=2"] = forged.model_dump_json().encode()
    assert store.apply(notice)
    assert (store.by_file, store.by_delta, store.rejected) == (2, 0, 0)
    assert store.path.read_bytes() == data


@pytest.mark.parametrize(
    "how",
    [
        "corrupt file",
        "wrong signature",
        "other pack",
        "missing file",
        "version mismatch",
        "wrong size",
    ],
)
def test_bad_updates_are_refused_and_the_old_gallery_stays(server, tmp_path, how) -> None:
    key = Ed25519PrivateKey.generate()
    store = _store(tmp_path, key)
    assert store.apply(_publish(server, key, "g2", _gallery(2), 2))
    good = (tmp_path / "gallery.cggal").read_bytes()
    data = _gallery(5)
    if how == "corrupt file":
        notice = _publish(server, key, "g5", data, 5)
        Files.files["/g5"] = data[:-1] + bytes([data[-1] ^ 1])
    elif how == "wrong signature":
        notice = _publish(server, Ed25519PrivateKey.generate(), "g5", data, 5)
    elif how == "other pack":
        notice = _publish(
            server, key, "g5", _gallery(5, pack="buffalo_l"), 5, model_pack="buffalo_l"
        )
    elif how == "missing file":
        notice = _publish(server, key, "g5", data, 5)
        del Files.files["/g5"]
    elif how == "version mismatch":
        notice = _publish(server, key, "g5", _gallery(4), 5)
    else:
        notice = _publish(server, key, "g5", data, 5, size_bytes=len(data) - 10)
    assert not store.apply(notice)
    assert store.version == 2 and store.rejected == 1
    assert (tmp_path / "gallery.cggal").read_bytes() == good
