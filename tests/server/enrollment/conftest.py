"""Fixtures of the enrollment and gallery tests: a face engine on the default pack, photos from
the shared set, a publisher with a fresh key, and templates made without photos; and the API
tests' app, seeded school and signed-in clients (tests/server/api/conftest.py).

``tests/server/conftest.py`` names its database engine ``engine``, hiding the face engine of
``tests/conftest.py``; ``face_engine`` is that one, on the same session-scoped default pack.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from sqlmodel import Session

from broker import passwords
from models.engine import FaceEngine
from models.gallery_delta import EMBEDDING_DTYPE
from models.packs import Pack
from server.auth_models import DeviceSecret
from server.enrollment import ConsentGiver, ConsentIn
from server.faces import shared_engine
from server.gallery_key import load_or_create_key
from server.gallery_publish import GalleryPublisher, shared_publisher
from server.models import BiometricConsent, EnrollmentSource, FaceEnrollment, Student
from tests.server.api.conftest import *  # noqa: F403  (the API tests' fixtures)
from tests.server.api.conftest import Seed

BASE_URL = "http://127.0.0.1:8000/api/v1"
GATE_PASSWORD = "gate-1-secret"

OBAMA = "face_recognition/by_identity/obama/obama.jpg"
OBAMA_2 = "face_recognition/by_identity/obama/obama2.jpg"
BIDEN = "face_recognition/by_identity/biden/biden.jpg"
GROUP = "face_recognition/_multi_face/kit_with_rose.jpg"


@pytest.fixture(scope="session")
def face_engine(default_pack: Pack) -> FaceEngine:
    return FaceEngine(default_pack, threads=2)


@pytest.fixture(scope="session")
def photo(faces_dir: Path):
    """``photo(relative path)``: the bytes of a shared test photo."""
    return lambda relative: (faces_dir / relative).read_bytes()


def a_consent(**changes) -> ConsentIn:
    fields = dict(
        given_by=ConsentGiver.GUARDIAN,
        given_by_name="Trần Văn Bố",
        given_at=datetime(2025, 9, 1, 8, 0, tzinfo=UTC),
    )
    return ConsentIn(**(fields | changes))


@pytest.fixture
def publisher(tmp_path: Path, default_pack: Pack) -> GalleryPublisher:
    """A publisher of the default pack that signs with a fresh key and announces nowhere."""
    return GalleryPublisher(default_pack.manifest, load_or_create_key(tmp_path / "key"), BASE_URL)


@pytest.fixture
def wired(app: FastAPI, face_engine: FaceEngine, publisher: GalleryPublisher) -> GalleryPublisher:
    """The app using the test's face engine and publisher instead of the process's own."""
    app.dependency_overrides[shared_engine] = lambda: face_engine
    app.dependency_overrides[shared_publisher] = lambda: publisher
    return publisher


@pytest.fixture
def gate(db: Session, seed: Seed) -> str:
    """``school-a.gate-1`` gets a password; returns the username."""
    device = seed.world.devices["gate-1"]
    db.add(DeviceSecret(device_id=device.id, secret_hash=passwords.hash_password(GATE_PASSWORD)))
    db.commit()
    return "school-a.gate-1"


def add_templates(
    db: Session, student: Student, count: int, pack: str, rng_seed: int = 0
) -> list[FaceEnrollment]:
    """``count`` random unit templates of ``pack`` for ``student`` under a fresh consent; for
    tests of publishing, which need templates but not faces."""
    consent = BiometricConsent(
        student_id=student.id, given_by_name="Phụ huynh", given_at=datetime.now(UTC)
    )
    db.add(consent)
    db.flush()
    vectors = np.random.default_rng(rng_seed).standard_normal((count, 128))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        FaceEnrollment(
            student_id=student.id,
            consent_id=consent.id,
            model_pack=pack,
            embedding=vector.astype(EMBEDDING_DTYPE).tobytes(),
            dim=128,
            source=EnrollmentSource.PHOTO,
        )
        for vector in vectors
    ]
    db.add_all(rows)
    db.commit()
    return rows
