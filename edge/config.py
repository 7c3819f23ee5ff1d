"""The gate's configuration: one TOML file plus environment overrides, validated at start-up.

Everything a technician can get wrong is checked before the gate starts, with the field named
(``broker.port: Input should be less than or equal to 65535``), so a bad provisioning bundle
fails on the bench, not at 6:45 on a school morning. Environment variables override the file:
``CAMPUSGATE_EDGE__BROKER__PASSWORD`` sets ``broker.password`` (secrets stay out of the file).
The server's retained ``config`` message later adjusts the recognition fields live.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from broker.topics import ID_PATTERN
from edge.cards.reader import ReaderConfig
from edge.link import BrokerSettings

Id = Annotated[str, Field(pattern=f"^{ID_PATTERN}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class ConfigError(ValueError):
    """A gate configuration that cannot be used; the message names every bad field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceSection(_Section):
    site: Id
    device: Id


class CameraSection(_Section):
    source: str = Field(default="0", description="Device index, /dev/videoN, URL or video file.")
    realtime: bool = Field(default=True, description="Play a video file at its own frame rate.")


class RecognitionSection(_Section):
    pack: str = "dlib-r29-mtcnn"
    models_dir: Path | None = None
    threads: int = Field(default=2, ge=0, le=16, description="onnxruntime intra-op threads.")
    detect_max_side: int = Field(
        default=640, ge=160, le=4096, description="Detection runs on a copy this large."
    )
    detect_fps: float = Field(default=10.0, gt=0.0, le=60.0)
    min_face_px: int = Field(
        default=80,
        ge=16,
        le=1024,
        description="Smallest face, in full-frame pixels (80 on 720p = 40 on the 640 px copy).",
    )
    match_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    max_embeds_per_track: int = Field(default=4, ge=1, le=20)
    confident_margin: float = Field(
        default=0.03, ge=0.0, le=1.0, description="Above the threshold: decide on one embedding."
    )
    cooldown_s: int = Field(default=120, ge=0, le=86_400)


class GateSection(_Section):
    direction: Literal["in", "out", "line"] = "in"
    crossing_line: tuple[Unit, Unit, Unit, Unit] | None = Field(
        default=None, description="x1, y1, x2, y2 as fractions of the frame."
    )
    require_face: bool = False
    face_window_s: float = Field(
        default=5.0,
        gt=0.0,
        le=60.0,
        description="With require_face, how long before and after a tap the owner's face counts.",
    )
    led_green_pin: int | None = Field(default=None, ge=0, le=27, description="BCM number.")
    led_red_pin: int | None = Field(default=None, ge=0, le=27, description="BCM number.")
    buzzer_pin: int | None = Field(default=None, ge=0, le=27, description="BCM number.")

    @model_validator(mode="after")
    def _line_when_needed(self) -> GateSection:
        if (self.direction == "line") != (self.crossing_line is not None):
            raise ValueError("crossing_line is required with direction 'line' and only then")
        return self


class ReaderSection(ReaderConfig):
    """The gate's card reader (``kind``, ``port``, ``baudrate``, the kind's ``options``)."""

    direction: Literal["in", "out"] | None = Field(
        default=None,
        description="Direction of card taps; default the gate's (required if that is 'line').",
    )


class StorageSection(_Section):
    data_dir: Path = Path("/var/lib/campusgate")
    outbox_capacity: int = Field(default=100_000, ge=100, le=10_000_000)


class GallerySection(_Section):
    public_key: Path = Field(
        default=Path("gallery.pub"),
        description="The school server's Ed25519 key (PEM) that signs gallery notices.",
    )


class TelemetrySection(_Section):
    interval_s: float = Field(default=30.0, ge=1.0, le=3600.0)


class ClaimSection(_Section):
    """A one-time claim token, exchanged at start-up for the gate's credential (edge.claim)."""

    server_url: str = Field(
        pattern=r"^https?://[^\s/]+",
        description="The school server's API base, e.g. https://school.example/api/v1.",
    )
    token: SecretStr


class EdgeConfig(BaseSettings):
    """The whole gate configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CAMPUSGATE_EDGE__", env_nested_delimiter="__", extra="forbid"
    )

    device: DeviceSection
    broker: BrokerSettings = BrokerSettings()
    camera: CameraSection = CameraSection()
    recognition: RecognitionSection = RecognitionSection()
    gate: GateSection = GateSection()
    reader: ReaderSection | None = None
    storage: StorageSection = StorageSection()
    gallery: GallerySection = GallerySection()
    telemetry: TelemetrySection = TelemetrySection()
    claim: ClaimSection | None = None

    @model_validator(mode="after")
    def _card_direction_known(self) -> EdgeConfig:
        # A tap has no track to cross the line with, so a line gate must say where taps go.
        if self.gate.direction == "line" and self.reader and self.reader.direction is None:
            raise ValueError("reader.direction is required when gate.direction is 'line'")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, so a secret can be injected at run time.
        return env_settings, init_settings

    @property
    def username(self) -> str:
        return self.broker.username or f"{self.device.site}.{self.device.device}"


def load_config(path: Path) -> EdgeConfig:
    """Read and validate a gate's TOML file; raise :class:`ConfigError` naming each bad field."""
    try:
        data: dict[str, Any] = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = EdgeConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors(include_url=False))
        raise ConfigError(f"{path}: {problems}") from None
    base = Path(path).resolve().parent
    return _relative_to(config, base)


def _problem(error: ErrorDetails) -> str:
    """One validation error as ``field.path: message`` (no path for a whole-file rule)."""
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _relative_to(config: EdgeConfig, base: Path) -> EdgeConfig:
    """Resolve relative file paths against the config file's folder (a provisioning bundle)."""

    def fix(value: Path | None) -> Path | None:
        return None if value is None or value.is_absolute() else base / value

    broker = config.broker.model_copy(
        update={
            name: fix(getattr(config.broker, name)) or getattr(config.broker, name)
            for name in ("ca_file", "client_cert", "client_key")
        }
    )
    storage = config.storage.model_copy(
        update={"data_dir": fix(config.storage.data_dir) or config.storage.data_dir}
    )
    gallery = config.gallery.model_copy(
        update={"public_key": fix(config.gallery.public_key) or config.gallery.public_key}
    )
    return config.model_copy(update={"broker": broker, "storage": storage, "gallery": gallery})
