"""The gate's gallery: the last good one kept on disk, replaced only by a verified newer one.

A gate must recognise students with the server down, so the gallery it last accepted is always
on disk and loaded at start. A new version announced on the site's ``gallery`` topic is fetched
over HTTPS with the device's credential and accepted only if the notice is signed by the
school's server, the file has the announced size and sha256, and it holds embeddings of the
gate's own pack; then it is written atomically and swapped in with one assignment, so the loop
never sees half a gallery. Anything else is refused, logged and counted, and the old gallery
stays.

A gate that holds a gallery first asks for a delta from its version (``?since=N``): the few
rows a publish changed instead of the school's whole gallery, which matters on a school's
uplink when every gate of a district fetches at once. It replays the delta on a copy of its
gallery (:mod:`models.gallery_delta`, the server's own code) and accepts the result only if its
bytes have the signed notice's size and sha256, exactly as a downloaded file. A delta the server
cannot give (410), or one that does not rebuild the announced file, costs one request: the gate
then fetches the file.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from broker.gallery_signing import SignatureError, verify
from broker.payloads import GalleryNotice
from edge.config import EdgeConfig
from edge.fetch import Fetch, https_fetcher
from models.gallery import Gallery, GalleryError
from models.gallery_delta import GalleryDelta, replay

log = logging.getLogger(__name__)


class GalleryRefused(ValueError):
    """A gallery update that was not accepted; the message says why."""


class GalleryStore:
    """The current gallery, readable from any thread without a lock."""

    def __init__(self, path: Path, pack: str, public_key: Ed25519PublicKey, fetch: Fetch) -> None:
        self.path = Path(path)
        self.pack = pack
        self._public_key = public_key
        self.fetch = fetch
        """How this store downloads (``fetch(url, max_bytes)``), with the gate's credential."""
        self._current: Gallery | None = None
        self.rejected = 0
        self.by_delta = 0
        """Updates rebuilt from a delta; the others (``by_file``) were downloaded whole."""
        self.by_file = 0

    def current(self) -> Gallery | None:
        """The gallery in use, or None before the first one arrives."""
        return self._current

    @property
    def version(self) -> int | None:
        return None if self._current is None else self._current.version

    def load_last_good(self) -> Gallery | None:
        """Load the gallery kept on disk, if any (a damaged file is reported and ignored)."""
        if not self.path.exists():
            return None
        try:
            gallery = Gallery.load(self.path)
            self._check_pack(gallery)
        except (GalleryError, GalleryRefused, OSError) as exc:
            log.error("stored gallery unusable", extra={"path": str(self.path), "reason": str(exc)})
            return None
        self._current = gallery
        log.info("gallery loaded", extra={"version": gallery.version, "rows": len(gallery)})
        return gallery

    def apply(self, notice: GalleryNotice) -> bool:
        """Fetch, verify and swap in the announced gallery; False (old one kept) if refused."""
        if self._current is not None and notice.version <= self._current.version:
            return False  # a retained notice we already have, or an older one
        try:
            gallery = self.verified(notice)
        except GalleryRefused as exc:
            self.rejected += 1
            log.error(
                "gallery update refused",
                extra={"version": notice.version, "reason": str(exc), "kept": self.version},
            )
            return False
        gallery.save(self.path)
        self._current = gallery
        log.info("gallery updated", extra={"version": gallery.version, "rows": len(gallery)})
        return True

    def verified(self, notice: GalleryNotice) -> Gallery:
        """The announced gallery, fetched and checked but not swapped in or saved;
        GalleryRefused says why not (``gatectl doctor`` asks this of a throwaway store)."""
        try:
            verify(self._public_key, notice)
        except SignatureError as exc:
            raise GalleryRefused(str(exc)) from None
        if notice.model_pack != self.pack:
            raise GalleryRefused(
                f"it is for pack {notice.model_pack!r}, this gate runs {self.pack!r}"
            )
        data = self._by_delta(notice)
        if data is None:
            data = self._file(notice)
            self.by_file += 1
        else:
            self.by_delta += 1
        try:  # parsed from bytes either way, so a rebuilt gallery is the file's, float16 and all
            gallery = Gallery.from_bytes(data)
        except GalleryError as exc:
            raise GalleryRefused(str(exc)) from None
        self._check_pack(gallery)
        if gallery.version != notice.version:
            raise GalleryRefused(f"file is version {gallery.version}, notice {notice.version}")
        return gallery

    def _file(self, notice: GalleryNotice) -> bytes:
        """The announced file, downloaded and checked against the notice."""
        try:
            data = self.fetch(str(notice.url), notice.size_bytes)
        except Exception as exc:  # network, TLS, HTTP status: all mean "not now"
            raise GalleryRefused(f"cannot fetch {notice.url}: {exc}") from None
        _check_announced(data, notice)
        return data

    def _by_delta(self, notice: GalleryNotice) -> bytes | None:
        """The announced file's bytes rebuilt from the current gallery and a delta, or None
        (said in the log) when there is no current gallery or the delta does not give them."""
        current = self._current
        if current is None:
            return None
        separator = "&" if "?" in str(notice.url) else "?"
        url = f"{notice.url}{separator}since={current.version}"
        try:
            delta = GalleryDelta.model_validate_json(self.fetch(url, notice.size_bytes))
            if (delta.site, delta.model_pack, delta.version) != (
                notice.site,
                notice.model_pack,
                notice.version,
            ):
                raise GalleryRefused("it is for another gallery than the notice's")
            gallery = Gallery.from_bytes(current.to_bytes())
            replay(delta, gallery)
            data = gallery.to_bytes()
            _check_announced(data, notice)
        except Exception as exc:  # no delta (410), a bad one, or not the announced file
            log.info(
                "no usable gallery delta; fetching the file",
                extra={"since": current.version, "version": notice.version, "reason": str(exc)},
            )
            return None
        return data

    def _check_pack(self, gallery: Gallery) -> None:
        if gallery.pack != self.pack:
            raise GalleryRefused(f"gallery holds {gallery.pack!r} embeddings, not {self.pack!r}")


def _check_announced(data: bytes, notice: GalleryNotice) -> None:
    """GalleryRefused unless ``data`` has the size and sha256 the signed notice announced."""
    if len(data) != notice.size_bytes:
        raise GalleryRefused(f"got {len(data)} bytes, the notice says {notice.size_bytes}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != notice.sha256:
        raise GalleryRefused(f"sha256 {digest[:12]}… differs from the notice's")


def gate_gallery_store(config: EdgeConfig, timeout_s: float = 30.0) -> GalleryStore:
    """The gate's store as ``config`` describes it: its data folder, its pack, the server's key
    (``gallery.public_key``), fetching with the gate's credential and CA. Raises OSError or
    ValueError when the key file is missing or not an Ed25519 public key."""
    key = load_pem_public_key(Path(config.gallery.public_key).read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{config.gallery.public_key} is not an Ed25519 public key")
    broker = config.broker
    password = broker.password.get_secret_value() if broker.password else None
    client_cert = (broker.client_cert, broker.client_key) if broker.client_cert else None
    fetch = https_fetcher(config.username, password, broker.ca_file, client_cert, timeout_s)
    path = config.storage.data_dir / "gallery.cggal"
    return GalleryStore(path, config.recognition.pack, key, fetch)
