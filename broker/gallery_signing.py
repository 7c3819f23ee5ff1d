"""Signing of gallery notices: gates accept a gallery only if the school's server signed it.

The notice travels over MQTT (retained) and the embeddings over HTTPS; the signature binds the
two. It covers the site, version, pack, entry count, size and sha256 of the embeddings file, so
a gate that verifies the notice and then the file's hash knows the file is the server's, even if
the broker or a gate credential is compromised. Ed25519, via ``cryptography``.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from broker.payloads import GalleryNotice


class SignatureError(ValueError):
    """A gallery notice whose signature does not verify with the gate's key."""


def signed_bytes(
    site: str,
    version: int,
    model_pack: str,
    entries: int,
    sha256: str,
    size_bytes: int,
    key_id: str,
) -> bytes:
    """The exact bytes signed: one field per line, in a fixed order."""
    fields = (
        "cg-gallery-v1",
        site,
        str(version),
        model_pack,
        str(entries),
        sha256,
        str(size_bytes),
        key_id,
    )
    return "\n".join(fields).encode()


def sign(
    key: Ed25519PrivateKey,
    *,
    site: str,
    version: int,
    model_pack: str,
    entries: int,
    sha256: str,
    size_bytes: int,
    key_id: str,
) -> str:
    """Base64 signature for a notice with these fields, by the server's gallery key."""
    message = signed_bytes(site, version, model_pack, entries, sha256, size_bytes, key_id)
    return base64.b64encode(key.sign(message)).decode()


def verify(public_key: Ed25519PublicKey, notice: GalleryNotice) -> None:
    """Raise :class:`SignatureError` unless ``notice`` was signed by ``public_key``'s owner."""
    message = signed_bytes(
        notice.site,
        notice.version,
        notice.model_pack,
        notice.entries,
        notice.sha256,
        notice.size_bytes,
        notice.key_id,
    )
    try:
        public_key.verify(base64.b64decode(notice.signature), message)
    except (InvalidSignature, ValueError):
        raise SignatureError(
            f"gallery notice v{notice.version} for {notice.site} is not signed by key "
            f"{notice.key_id!r}"
        ) from None
