"""The gate's gallery: the last good one kept on disk, replaced only by a verified newer one.

A gate must recognise students with the server down, so the gallery it last accepted is always
on disk and loaded at start. A new version announced on the site's ``gallery`` topic is fetched
over HTTPS with the device's credential and accepted only if the notice is signed by the
school's server, the file has the announced size and sha256, and it holds embeddings of the
gate's own pack; then it is written atomically and swapped in with one assignment, so the loop
never sees half a gallery. Anything else is refused, logged and counted, and the old gallery
stays.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.gallery_signing import SignatureError, verify
from broker.payloads import GalleryNotice
from models.gallery import Gallery, GalleryError

log = logging.getLogger(__name__)

Fetch = Callable[[str, int], bytes]
"""``fetch(url, max_bytes)``: the file at ``url``, refusing more than ``max_bytes``."""


class GalleryRefused(ValueError):
    """A gallery update that was not accepted; the message says why."""


class GalleryStore:
    """The current gallery, readable from any thread without a lock."""

    def __init__(self, path: Path, pack: str, public_key: Ed25519PublicKey, fetch: Fetch) -> None:
        self.path = Path(path)
        self.pack = pack
        self._public_key = public_key
        self._fetch = fetch
        self._current: Gallery | None = None
        self.rejected = 0

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
            gallery = self._verified(notice)
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

    def _verified(self, notice: GalleryNotice) -> Gallery:
        try:
            verify(self._public_key, notice)
        except SignatureError as exc:
            raise GalleryRefused(str(exc)) from None
        if notice.model_pack != self.pack:
            raise GalleryRefused(
                f"it is for pack {notice.model_pack!r}, this gate runs {self.pack!r}"
            )
        try:
            data = self._fetch(str(notice.url), notice.size_bytes)
        except Exception as exc:  # network, TLS, HTTP status: all mean "not now"
            raise GalleryRefused(f"cannot fetch {notice.url}: {exc}") from None
        if len(data) != notice.size_bytes:
            raise GalleryRefused(f"got {len(data)} bytes, the notice says {notice.size_bytes}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != notice.sha256:
            raise GalleryRefused(f"sha256 {digest[:12]}… differs from the notice's")
        try:
            gallery = Gallery.from_bytes(data)
        except GalleryError as exc:
            raise GalleryRefused(str(exc)) from None
        self._check_pack(gallery)
        if gallery.version != notice.version:
            raise GalleryRefused(f"file is version {gallery.version}, notice {notice.version}")
        return gallery

    def _check_pack(self, gallery: Gallery) -> None:
        if gallery.pack != self.pack:
            raise GalleryRefused(f"gallery holds {gallery.pack!r} embeddings, not {self.pack!r}")
