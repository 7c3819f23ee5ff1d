"""The server's Ed25519 gallery key: created on first use in the data directory, then reused.

Gates trust a gallery only if this key signed its notice, so the private key never leaves the
server's data directory (file mode 0600); the public key is written beside it as PEM for
technicians to install on gates (``gallery.public_key`` in the gate's config). Two processes
starting at once agree on one key: the file is created with a no-overwrite link, and the loser
reads the winner's.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

PRIVATE_KEY_FILE = "gallery-signing.key"
PUBLIC_KEY_FILE = "gallery.pub"


class GalleryKeyError(RuntimeError):
    """The key file exists but is not an Ed25519 private key; the message names the file."""


@dataclass(frozen=True)
class GalleryKey:
    """The signing key and the id notices carry so a gate can tell which key signed."""

    private_key: Ed25519PrivateKey
    key_id: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        """The public key as PEM, the form a gate's config expects."""
        return self.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """A short stable id: ``gk-`` and the first 16 hex digits of the raw public key's sha256."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"gk-{hashlib.sha256(raw).hexdigest()[:16]}"


def load_or_create_key(data_dir: Path) -> GalleryKey:
    """The key in ``data_dir`` (created with its public PEM on first use)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PRIVATE_KEY_FILE
    if not path.exists():
        _create(path)
    try:
        private_key = load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise GalleryKeyError(f"{path} is not a PEM private key: {exc}") from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise GalleryKeyError(f"{path} is not an Ed25519 key")
    key = GalleryKey(private_key, key_id_of(private_key.public_key()))
    public_path = data_dir / PUBLIC_KEY_FILE
    if not public_path.exists() or public_path.read_bytes() != key.public_pem():
        public_path.write_bytes(key.public_pem())
    return key


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temp, path)  # fails if another process created the key meanwhile: keep theirs
    except FileExistsError:
        pass
    finally:
        Path(temp).unlink(missing_ok=True)
