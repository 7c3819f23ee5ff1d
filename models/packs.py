"""Model packs: a manifest plus its files, found in a models directory and checked by hash.

A pack is data. The manifest names the detector and recogniser *kinds* and the files each uses;
the engine picks the code that runs them from those kinds, so adding a pack never means adding
if-chains elsewhere. A pack whose files do not match their recorded sha256 is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

MANIFEST = "manifest.json"
PackName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class PackError(RuntimeError):
    """A pack that is missing, malformed or whose files were changed; the message says which."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSpec(_Spec):
    """Which detector runs the pack's detection files, and its defaults."""

    kind: Literal["mtcnn", "scrfd"]
    files: dict[str, str] = Field(description="Role (e.g. pnet, model) → file in the pack.")
    input_size: tuple[int, int] | None = Field(
        default=None, description="Fixed network input (width, height), if the detector has one."
    )
    score_threshold: float = Field(ge=0.0, le=1.0)


class RecogniserSpec(_Spec):
    """Which recogniser turns an aligned chip into an embedding."""

    kind: Literal["dlib-resnet", "arcface"]
    file: str
    alignment: Literal["dlib-150", "dlib-5pt", "arcface-112"] = Field(
        description=(
            "How chips are cut: dlib-150 fits the detector's five points to a template; dlib-5pt "
            "places dlib's own five points with its shape predictor (alignment_file) and cuts "
            "dlib's chip from them; arcface-112 is InsightFace's norm_crop."
        )
    )
    alignment_file: str | None = Field(
        default=None, description="The landmark model the alignment needs, if any."
    )
    input_size: tuple[int, int]
    embedding_size: int = Field(gt=0, le=4096)

    @model_validator(mode="after")
    def _landmark_model_when_needed(self) -> RecogniserSpec:
        if (self.alignment == "dlib-5pt") != (self.alignment_file is not None):
            raise ValueError("alignment_file is required with alignment 'dlib-5pt' and only then")
        return self


class QualitySpec(_Spec):
    """A face below any of these is not embedded: too small, blurred, turned or doubtful."""

    min_face_px: int = Field(ge=8)
    min_sharpness: float = Field(ge=0.0, description="Variance of the Laplacian of the chip.")
    max_yaw_deg: float = Field(gt=0.0, le=90.0)
    max_pitch_deg: float = Field(gt=0.0, le=90.0)
    min_detector_score: float = Field(ge=0.0, le=1.0)


class PackFile(_Spec):
    """One file of a pack and the sha256 it must have."""

    path: str
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside_pack(cls, value: str) -> str:
        parts = PurePosixPath(value).parts
        if not parts or value.startswith("/") or ".." in parts or "\\" in value:
            raise ValueError("must be a relative path inside the pack")
        return value


class PackManifest(_Spec):
    """Everything the engine needs to know about a pack."""

    name: PackName
    version: str = Field(min_length=1, max_length=32)
    licence: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500, description="Where the weights came from.")
    detector: DetectorSpec
    recogniser: RecogniserSpec
    match_threshold: float = Field(
        ge=-1.0, le=1.0, description="Cosine similarity at or above which two faces match."
    )
    identify_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description=(
            "Stricter similarity for naming someone from a whole gallery (1:N) at a gate, where "
            "every stranger is compared with every student; default: match_threshold."
        ),
    )
    quality: QualitySpec
    files: list[PackFile] = Field(min_length=1)

    def referenced(self) -> set[str]:
        """The files the detector, the alignment and the recogniser use."""
        recogniser = self.recogniser
        aligner = {recogniser.alignment_file} if recogniser.alignment_file else set()
        return set(self.detector.files.values()) | {recogniser.file} | aligner


@dataclass(frozen=True)
class Pack:
    """An installed pack whose files were checked against its manifest."""

    root: Path
    manifest: PackManifest

    @property
    def name(self) -> str:
        return self.manifest.name

    def path(self, relative: str) -> Path:
        """Absolute path of one of the pack's files."""
        return self.root / relative


def default_models_dir() -> Path:
    """``$CAMPUSGATE_MODELS``, else ``$XDG_DATA_HOME/campusgate/models`` (~/.local/share/…)."""
    explicit = os.environ.get("CAMPUSGATE_MODELS")
    if explicit:
        return Path(explicit)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "campusgate" / "models"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large weights never sit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(pack_dir: Path) -> PackManifest:
    """Parse and validate a pack's manifest, or raise :class:`PackError` saying what is wrong."""
    path = pack_dir / MANIFEST
    try:
        manifest = PackManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise PackError(f"{pack_dir} is not a model pack: it has no {MANIFEST}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors()
        )
        raise PackError(f"{path} is invalid: {problems}") from None
    listed = {entry.path for entry in manifest.files}
    unlisted = manifest.referenced() - listed
    if unlisted:
        raise PackError(f"{path} uses files it does not list with a hash: {sorted(unlisted)}")
    if manifest.name != pack_dir.name:
        raise PackError(f"{path} names pack {manifest.name!r} but lives in {pack_dir.name!r}")
    return manifest


def verify_files(pack_dir: Path, manifest: PackManifest) -> None:
    """Raise :class:`PackError` unless every listed file exists with its recorded sha256."""
    for entry in manifest.files:
        path = pack_dir / entry.path
        if not path.is_file():
            raise PackError(f"pack {manifest.name!r}: file {entry.path} is missing")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise PackError(
                f"pack {manifest.name!r}: {entry.path} has sha256 {actual[:12]}…, the manifest "
                f"says {entry.sha256[:12]}…; the file was changed or damaged, reinstall the pack"
            )


def load_pack(name: str, models_dir: Path | None = None, *, verify: bool = True) -> Pack:
    """The installed pack ``name``, its files checked against their hashes unless told not to."""
    root = (models_dir or default_models_dir()) / name
    if not root.is_dir():
        raise PackError(
            f"model pack {name!r} is not installed in {root.parent}; "
            f"install it with: gatectl models install {name}"
        )
    manifest = read_manifest(root)
    if verify:
        verify_files(root, manifest)
    return Pack(root, manifest)


def installed_packs(models_dir: Path | None = None) -> list[tuple[str, PackManifest | PackError]]:
    """Each pack folder in the models directory with its manifest, or the error reading it."""
    root = models_dir or default_models_dir()
    found: list[tuple[str, PackManifest | PackError]] = []
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if child.is_dir() and not child.name.startswith("."):
            try:
                found.append((child.name, read_manifest(child)))
            except PackError as exc:
                found.append((child.name, exc))
    return found


def file_entries(pack_dir: Path, paths: Iterable[str]) -> list[PackFile]:
    """Manifest entries (hash and size) for files already placed in ``pack_dir``."""
    return [
        PackFile(path=p, sha256=sha256_file(pack_dir / p), size=(pack_dir / p).stat().st_size)
        for p in sorted(paths)
    ]


def install_pack(
    models_dir: Path,
    build: Callable[[Path], PackManifest],
) -> Pack:
    """Build a pack in a staging folder with ``build`` and move it into place atomically.

    ``build(staging_dir)`` writes the pack's files into the folder and returns its manifest; an
    interrupted install leaves the previous version of the pack untouched.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=models_dir))
    try:
        manifest = build(staging)
        (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        verify_files(staging, manifest)
        target = models_dir / manifest.name
        old = models_dir / f".old-{manifest.name}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Pack(target, manifest)


def remove_pack(name: str, models_dir: Path | None = None) -> None:
    """Delete an installed pack."""
    root = (models_dir or default_models_dir()) / name
    if not (root / MANIFEST).is_file():
        raise PackError(f"model pack {name!r} is not installed in {root.parent}")
    shutil.rmtree(root)
