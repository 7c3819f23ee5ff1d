"""Users as the API shows and takes them: never with the password hash."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from server.api.schemas.common import create_model_of, update_model_of
from server.models import UserBase

PASSWORD_MIN = 8
PASSWORD_MAX = 256

UserRules = create_model_of(UserBase, "UserRules")
UserUpdate = update_model_of(UserBase, "UserUpdate")


class UserPublic(UserBase):
    id: int
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(UserRules):  # type: ignore[misc,valid-type]
    password: str | None = Field(
        default=None,
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        description="None: the user cannot sign in until a password is set.",
    )


class PasswordSet(BaseModel):
    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
