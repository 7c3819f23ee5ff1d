"""Classes and students as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime

from server.api.schemas.common import create_model_of, update_model_of
from server.models import SchoolClassBase, StudentBase

SchoolClassCreate = create_model_of(SchoolClassBase, "SchoolClassCreate")
SchoolClassUpdate = update_model_of(SchoolClassBase, "SchoolClassUpdate", exclude=("school_id",))
StudentCreate = create_model_of(StudentBase, "StudentCreate")
StudentUpdate = update_model_of(StudentBase, "StudentUpdate", exclude=("school_id",))


class SchoolClassPublic(SchoolClassBase):
    id: int


class StudentPublic(StudentBase):
    id: int
    created_at: datetime
    updated_at: datetime
