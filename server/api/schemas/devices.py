"""Gates as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from server.api.schemas.common import create_model_of, update_model_of
from server.models import DeviceBase, DeviceStatus

DeviceCreate = create_model_of(DeviceBase, "DeviceCreate")
DeviceUpdate = update_model_of(DeviceBase, "DeviceUpdate", exclude=("site_id", "device_id"))


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
