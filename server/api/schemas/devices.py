"""Gates as the API takes and shows them, their credentials and their claim tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.api.schemas.common import MAX_ID, create_model_of, update_model_of
from server.models import ID_REGEX, DeviceBase, DeviceStatus

DeviceCreate = create_model_of(DeviceBase, "DeviceCreate")
DeviceUpdate = update_model_of(DeviceBase, "DeviceUpdate", exclude=("site_id", "device_id"))

CLAIM_TTL_MIN_S = 60
CLAIM_TTL_MAX_S = 7 * 24 * 3600
CLAIM_TOKEN_MAX = 128


class DeviceRegister(DeviceCreate):  # type: ignore[misc,valid-type]
    """A new gate, at its site given by id or by code (technicians cannot list sites, but they
    know the code: it is the ``{site}`` of the gate's topics)."""

    site_id: int | None = Field(default=None, ge=1, le=MAX_ID)  # type: ignore[assignment]
    site: str | None = Field(
        default=None, pattern=ID_REGEX, max_length=63, description="The site's code."
    )

    @model_validator(mode="after")
    def _one_site(self) -> DeviceRegister:
        if (self.site_id is None) == (self.site is None):
            raise ValueError(
                "give exactly one of site_id and site (its code) / cần đúng một: site_id hoặc site"
            )
        return self


class DevicePublic(DeviceBase):
    id: int
    site: str = Field(description="The site's code: the {site} of the gate's topics.")
    status: DeviceStatus
    last_seen_at: datetime | None
    agent_version: str | None
    model_pack: str | None
    gallery_version: int | None
    last_telemetry: dict[str, Any] | None
    created_at: datetime
    has_secret: bool = Field(description="Whether a secret is set (PUT …/secret).")


class DeviceSecretIssued(BaseModel):
    """A gate's new credential, shown only in this answer: for the broker and for HTTP Basic
    on the gate-facing endpoints."""

    username: str = Field(description="{site}.{device}")
    password: str


class BrokerAccount(BaseModel):
    """One entry of the broker's password file and ACL: an enabled gate that has a secret."""

    site: str
    device: str
    username: str = Field(description="{site}.{device}")
    password_hash: str = Field(description="Mosquitto's $7$ PBKDF2-SHA512 hash of the secret.")


class GalleryKeyPublic(BaseModel):
    """The server's Ed25519 gallery key, which gates need to trust gallery notices."""

    key_id: str
    public_key: str = Field(description="PEM, for the gate's gallery.public_key file.")


class ClaimTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_s: int = Field(
        default=900,
        ge=CLAIM_TTL_MIN_S,
        le=CLAIM_TTL_MAX_S,
        description="Seconds the token stays valid (1 minute to 7 days).",
    )


class ClaimTokenIssued(BaseModel):
    """A claim token, shown only in this answer. Issuing it gave the gate a new secret (the old
    one stopped working): render the broker's password file now, and put the token on the gate."""

    token: str
    expires_at: datetime
    site: str
    device: str
    username: str = Field(description="{site}.{device}")


class DeviceClaim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=CLAIM_TOKEN_MAX)


class DeviceCredential(DeviceSecretIssued):
    """What a gate receives for its claim token: who it is, its secret, and the server's
    gallery key."""

    site: str
    device: str
    gallery_public_key: str = Field(description="PEM, for the gate's gallery.public_key file.")
