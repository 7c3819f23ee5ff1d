"""Schools and their calendars as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime

from server.api.schemas.common import create_model_of, update_model_of
from server.models import (
    CalendarDayBase,
    SchoolBase,
    SchoolSessionBase,
    SchoolYearBase,
    SiteBase,
    TermBase,
)

SchoolCreate = create_model_of(SchoolBase, "SchoolCreate")
SchoolUpdate = update_model_of(SchoolBase, "SchoolUpdate")
SiteCreate = create_model_of(SiteBase, "SiteCreate")
SiteUpdate = update_model_of(SiteBase, "SiteUpdate", exclude=("school_id",))
SchoolYearCreate = create_model_of(SchoolYearBase, "SchoolYearCreate")
SchoolYearUpdate = update_model_of(SchoolYearBase, "SchoolYearUpdate", exclude=("school_id",))
TermCreate = create_model_of(TermBase, "TermCreate")
TermUpdate = update_model_of(TermBase, "TermUpdate", exclude=("school_year_id",))
CalendarDayCreate = create_model_of(CalendarDayBase, "CalendarDayCreate")
CalendarDayUpdate = update_model_of(CalendarDayBase, "CalendarDayUpdate", exclude=("school_id",))
SchoolSessionCreate = create_model_of(SchoolSessionBase, "SchoolSessionCreate")
SchoolSessionUpdate = update_model_of(
    SchoolSessionBase, "SchoolSessionUpdate", exclude=("school_id",)
)


class SchoolPublic(SchoolBase):
    id: int
    created_at: datetime


class SitePublic(SiteBase):
    id: int


class SchoolYearPublic(SchoolYearBase):
    id: int


class TermPublic(TermBase):
    id: int


class CalendarDayPublic(CalendarDayBase):
    id: int


class SchoolSessionPublic(SchoolSessionBase):
    id: int
