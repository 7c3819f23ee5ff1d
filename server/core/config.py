"""Server settings from ``CAMPUSGATE_SERVER__…`` environment variables, checked at start-up.

Nested sections use ``__`` as well, e.g. ``CAMPUSGATE_SERVER__MQTT__HOST=10.0.0.5`` or
``CAMPUSGATE_SERVER__DATABASE_URL=postgresql+psycopg://campusgate@db/campusgate``. A wrong value
fails at once with the field named, never half-way through ingest.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.mosquitto_config import SERVER_USERNAME
from broker.topics import check_id
from server.core.zones import DEFAULT_TIMEZONE
from server.notify.settings import NotifySection


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/campusgate/server`` (~/.local/share/…), beside the models directory."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "campusgate" / "server"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSection(_Section):
    """Where the broker is and how the server signs in to it.

    Point the server at the broker's loopback listener (the project's Mosquitto config has one
    for it): on the gates' TLS listener Mosquitto replaces each client id with the username, so
    ingest workers would take over one another's persistent session.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        description="MQTT version of the server's publishing clients (gallery announcer): 5 for "
        "its refusal reasons, 3.1.1 for the embedded broker. Ingest always speaks 3.1.1: its "
        "persistent session needs nothing from 5, and paho is a third faster without it.",
    )
    username: str = SERVER_USERNAME
    password: SecretStr | None = None
    ca_file: Path | None = Field(
        default=None, description="CA of the broker's certificate; None: plain TCP (loopback)."
    )
    share_group: str = Field(
        default="ingest",
        description="Shared-subscription group of the ingest workers; '' subscribes directly "
        "(one worker only, for a broker without shared subscriptions).",
    )
    client_id: str = Field(
        default="campusgate-ingest",
        pattern=r"^[A-Za-z0-9._-]{1,40}$",
        description="Worker n connects as '{client_id}-{n}'; the broker keeps the messages it has "
        "not acknowledged in that id's persistent session, so keep the id stable across restarts.",
    )
    keepalive_s: int = Field(default=30, ge=5, le=300)

    @field_validator("share_group")
    @classmethod
    def _valid_group(cls, value: str) -> str:
        return check_id(value, "share group") if value else value


class IngestSection(_Section):
    """How the ingest workers batch and retry."""

    workers: int = Field(default=1, ge=1, le=64)
    batch_max: int = Field(
        default=200, ge=1, le=10_000, description="Messages committed in one transaction, at most."
    )
    retry_min_delay_s: float = Field(default=0.2, gt=0.0, le=60.0)
    retry_max_delay_s: float = Field(default=30.0, gt=0.0, le=3600.0)


class AttendanceSection(_Section):
    """The absent job's schedule."""

    absent_check_interval_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    catch_up_days: int = Field(
        default=14, ge=0, le=366, description="Days back the absent job looks after downtime."
    )


class HttpSection(_Section):
    """Where the web server listens, and whether it speaks HTTPS itself.

    Gates fetch their gallery and parents sign in over this port, so a school without a
    reverse proxy gives the server a certificate (``gatectl broker ca`` issues one from the
    deployment's CA, which the gates already trust) instead of serving them in clear text.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Web server processes sharing the port (one serves ~80 roll requests/s).",
    )
    tls_certfile: Path | None = Field(
        default=None,
        description="PEM certificate (chain) to serve HTTPS with; None: plain HTTP, e.g. on "
        "loopback behind a reverse proxy that terminates TLS.",
    )
    tls_keyfile: Path | None = Field(default=None, description="PEM private key of tls_certfile.")

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSection:
        pair = (self.tls_certfile, self.tls_keyfile)
        if (pair[0] is None) != (pair[1] is None):
            raise ValueError("set both http.tls_certfile and http.tls_keyfile, or neither")
        for name, path in zip(("tls_certfile", "tls_keyfile"), pair, strict=True):
            if path is not None and not path.is_file():
                raise ValueError(f"http.{name}: no such file {path}")
        return self

    @property
    def tls(self) -> tuple[Path, Path] | None:
        """(certificate, key) when the server speaks HTTPS."""
        if self.tls_certfile is None or self.tls_keyfile is None:
            return None
        return self.tls_certfile, self.tls_keyfile

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"


class ServerSettings(BaseSettings):
    """The whole server configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CAMPUSGATE_SERVER__", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = Field(
        default="", description="SQLAlchemy URL; default: SQLite file campusgate.db in data_dir."
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE, description="Time zone given to a school created without one."
    )
    mqtt: MqttSection = MqttSection()
    ingest: IngestSection = IngestSection()
    attendance: AttendanceSection = AttendanceSection()
    http: HttpSection = HttpSection()
    notify: NotifySection = NotifySection()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _defaults_and_limits(self) -> ServerSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'campusgate.db'}"
        if self.ingest.workers > 1 and not self.mqtt.share_group:
            raise ValueError("several ingest workers need mqtt.share_group (a shared subscription)")
        return self


@lru_cache
def get_settings() -> ServerSettings:
    """The settings of this process, read from the environment once."""
    return ServerSettings()
