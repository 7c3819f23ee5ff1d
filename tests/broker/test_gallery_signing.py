"""A gallery notice verifies only with the server's key and only as signed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.gallery_signing import SignatureError, sign, verify
from broker.payloads import GalleryNotice, utc_now

FIELDS = dict(
    site="school-a",
    version=7,
    model_pack="dlib-r29-mtcnn",
    entries=1200,
    sha256="ab" * 32,
    size_bytes=330_000,
    key_id="gallery-2026",
)


def notice(key: Ed25519PrivateKey, **changes) -> GalleryNotice:
    signature = sign(key, **FIELDS)
    return GalleryNotice(
        **(FIELDS | changes), ts=utc_now(), url="https://s.example/g/7", signature=signature
    )


def test_signed_notice_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    verify(key.public_key(), notice(key))


@pytest.mark.parametrize(
    "change",
    [
        {"version": 8},
        {"sha256": "cd" * 32},
        {"entries": 1},
        {"site": "school-b"},
        {"key_id": "other"},
    ],
)
def test_any_changed_field_breaks_the_signature(change) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureError, match="not signed by key"):
        verify(key.public_key(), notice(key, **change))


def test_another_key_is_refused() -> None:
    with pytest.raises(SignatureError):
        verify(Ed25519PrivateKey.generate().public_key(), notice(Ed25519PrivateKey.generate()))
