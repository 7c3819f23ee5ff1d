"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["tests.fixtures.mosquitto", "tests.fixtures.browser"]

# Speed is measured by benchmarks, never asserted by tests: hypothesis's per-example deadline
# would fail a correct parser whenever CI's two cores are busy, so it is off for the suite.
settings.register_profile("campusgate", deadline=None, print_blob=True)
settings.load_profile("campusgate")

ROOT = Path(__file__).resolve().parent.parent


def _faces_root() -> Path | None:
    """The shared face photos: $CAMPUSGATE_FACES, else ../shared/faces beside the checkout."""
    env = os.environ.get("CAMPUSGATE_FACES")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "faces")
    for candidate in candidates:
        if (candidate / "identities.csv").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """Root of the shared test photos; tests that need them skip with the reason when absent."""
    root = _faces_root()
    if root is None:
        pytest.skip(
            "shared face photos not found: set CAMPUSGATE_FACES or place them in ../shared/faces"
        )
    return root


@pytest.fixture(scope="session")
def default_pack(tmp_path_factory: pytest.TempPathFactory):
    """The default pack ``dlib-r29-mtcnn``, built from the installed wheels into a fresh folder,
    so no test depends on a pack left in the user's models directory."""
    from models.default_pack import install_default_pack

    return install_default_pack(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def engine(default_pack):
    """A face engine on the default pack, shared by the tests of one session."""
    from models.engine import FaceEngine

    return FaceEngine(default_pack, threads=2)
