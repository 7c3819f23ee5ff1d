"""The query of an attendance report."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from server.api.reports import Lang
from server.api.schemas.common import MAX_ID


class ReportQuery(BaseModel):
    """A class or a school, a date range (default: the last 30 days), a language."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    school_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    starts_on: date | None = Field(default=None, alias="from")
    ends_on: date | None = Field(default=None, alias="to")
    lang: Lang = "vi"
