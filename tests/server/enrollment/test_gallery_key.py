"""The server's gallery key (server.gallery_key): made once, kept private, reused."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from server.gallery_key import (
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    GalleryKeyError,
    load_or_create_key,
)


def test_the_key_is_created_once_private_and_its_public_half_published(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path)
    again = load_or_create_key(tmp_path)
    assert again.key_id == first.key_id and first.key_id.startswith("gk-")
    assert (tmp_path / PRIVATE_KEY_FILE).stat().st_mode & 0o077 == 0
    public = load_pem_public_key((tmp_path / PUBLIC_KEY_FILE).read_bytes())
    assert public == first.public_key


def test_a_damaged_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    (tmp_path / PRIVATE_KEY_FILE).write_text("not a key")
    with pytest.raises(GalleryKeyError, match=PRIVATE_KEY_FILE):
        load_or_create_key(tmp_path)
