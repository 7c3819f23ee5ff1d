"""Sign-in, session and API-token models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from server.api.schemas.users import PASSWORD_MAX, PASSWORD_MIN, UserPublic


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class SessionInfo(BaseModel):
    """Who is signed in; ``csrf_token`` (cookie sessions only) goes in ``X-CSRF-Token`` on every
    POST, PUT, PATCH and DELETE."""

    user: UserPublic
    via: Literal["cookie", "bearer"]
    csrf_token: str | None = None
    expires_at: datetime | None = None


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)


class ApiTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")
    expires_in_days: int | None = Field(default=90, ge=1, le=3650, description="None: never.")


class ApiTokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="Shown only now; send as 'Authorization: Bearer <token>'.")
