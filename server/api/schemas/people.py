"""Guardians, their links to students, and cards, as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from server.api.schemas.common import create_model_of, update_model_of
from server.models import (
    CardBase,
    GuardianBase,
    GuardianRelationship,
    default_channels,
)

GuardianCreate = create_model_of(GuardianBase, "GuardianCreate")
GuardianUpdate = update_model_of(GuardianBase, "GuardianUpdate")
CardCreate = create_model_of(CardBase, "CardCreate")
CardUpdate = update_model_of(CardBase, "CardUpdate", exclude=("student_id", "uid"))
ChannelName = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class GuardianPublic(GuardianBase):
    id: int
    created_at: datetime


class GuardianLinkSet(BaseModel):
    """How a guardian is linked to a student and wants to hear about them."""

    relationship: GuardianRelationship
    is_primary: bool = False
    channel_preferences: dict[ChannelName, bool] = Field(
        default_factory=default_channels, max_length=16
    )


class StudentGuardianPublic(BaseModel):
    """A guardian of a student, with the link's details."""

    guardian: GuardianPublic
    relationship: GuardianRelationship
    is_primary: bool
    channel_preferences: dict[str, bool]


class CardPublic(CardBase):
    id: int
    created_at: datetime
