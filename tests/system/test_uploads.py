"""Hostile uploads to the enrollment photo endpoint: oversized bodies and photos are refused
with nothing stored, and file names are never used, so no name (``../../etc/passwd``, an absolute
path, a NUL) can put a file anywhere — :mod:`server.api.uploads` keeps every part in memory and
writes no file at all. Run on both databases, like the API tests."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from server.enrollment import MAX_PHOTO_BYTES, MAX_PHOTOS
from server.models import FaceEnrollment
from tests.server.api.conftest import Clients, Seed
from tests.server.conftest import db, db_url, engine  # noqa: F401  (fixtures)
from tests.server.enrollment.conftest import *  # noqa: F403  (the API and enrollment fixtures)
from tests.server.enrollment.conftest import OBAMA

CONSENT = {"given_by": "guardian", "given_by_name": "Trần Văn Bố"}
MB = 2**20


def _faces(db: Session) -> int:  # noqa: F811  (db is the fixture's session, passed in)
    db.rollback()
    return db.exec(select(func.count()).select_from(FaceEnrollment)).one()


def _post(clients: Clients, seed: Seed, files, data=CONSENT, **kwargs):
    url = f"/api/v1/students/{seed.students[0].id}/faces"
    return clients.admin.post(url, files=files, data=data, **kwargs)


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Temporary files and the working directory point into one empty folder for the test."""
    root = tmp_path / "sandbox"
    (root / "tmp").mkdir(parents=True)
    (root / "cwd").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root / "tmp"))
    monkeypatch.chdir(root / "cwd")
    yield root


def test_an_oversized_photo_is_refused_and_nothing_is_stored(
    db: Session,  # noqa: F811
    seed: Seed,
    clients: Clients,
    wired,
    sandbox: Path,
) -> None:
    big = [("photos", ("big.jpg", b"\xff\xd8" + bytes(MAX_PHOTO_BYTES), "image/jpeg"))]
    answer = _post(clients, seed, big)
    assert answer.status_code == 422, answer.text
    assert [p["code"] for p in answer.json()["detail"]["problems"]] == ["too_large"]

    def endless():  # a body past every cap, sent chunked: no Content-Length to trust
        yield b'--x\r\nContent-Disposition: form-data; name="photos"; filename="a.jpg"\r\n\r\n'
        for _ in range(MAX_PHOTOS * MAX_PHOTO_BYTES // MB + 3):
            yield bytes(MB)

    url = f"/api/v1/students/{seed.students[0].id}/faces"
    answer = clients.admin.post(
        url, content=endless(), headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert answer.status_code == 413, answer.text
    assert "413" not in answer.json()["detail"] and "MB" in answer.json()["detail"]
    assert _faces(db) == 0
    assert _files(sandbox) == {sandbox / "tmp", sandbox / "cwd"}  # nothing spooled anywhere


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "../../../../../../tmp/{marker}",
        "/tmp/{marker}",
        "..\\..\\windows\\{marker}.ini",
        "photo\x00/../../{marker}.jpg",
        "./%2e%2e/%2e%2e/{marker}",
    ],
)
def test_file_names_are_never_paths(
    db: Session,  # noqa: F811
    seed: Seed,
    clients: Clients,
    wired,
    photo,
    sandbox: Path,
    name: str,
) -> None:
    marker = f"cg-upload-{secrets.token_hex(4)}"
    filename = name.format(marker=marker)
    answer = _post(clients, seed, [("photos", (filename, photo(OBAMA), "image/jpeg"))])
    assert answer.status_code == 201, answer.text  # the name is ignored, not refused
    assert _faces(db) == 1  # the template, and nothing else
    assert _files(sandbox) == {sandbox / "tmp", sandbox / "cwd"}
    assert not [p for p in (Path("/tmp"), Path("/etc")) if any(p.glob(f"*{marker}*"))]
    assert os.path.getsize("/etc/passwd") > 0  # still the system's own
