"""What the enrollment and gallery routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from server.api.schemas.records import ConsentPublic
from server.enrollment import MAX_PHOTOS, PackTemplates


class PhotoForm(BaseModel):
    """The ``multipart/form-data`` fields of an enrollment (documentation of the request body;
    the route reads the form itself, see :mod:`server.api.uploads`). The consent fields are
    needed unless a consent is already on record."""

    photos: list[bytes] = Field(
        min_length=1, max_length=MAX_PHOTOS, description="JPEG, PNG, WebP, BMP, TIFF or JPEG 2000."
    )
    source: Literal["photo", "cccd"] = Field(
        default="photo", description="'cccd': the portrait read from the chip of a CCCD."
    )
    given_by: Literal["guardian", "student", "admin"] | None = Field(
        default=None, description="Who consented; 'admin' records it on their behalf."
    )
    given_by_name: str | None = Field(default=None, max_length=128)
    guardian_id: int | None = None
    given_at: datetime | None = Field(default=None, description="With its offset; default now.")


class ProblemPublic(BaseModel):
    """Why one photo (``photo``, from 1) or the request (``photo`` null) was refused.
    ``other_student`` (the look-alike's code) is shown to admins only."""

    code: str
    photo: int | None
    vi: str
    en: str
    other_student: str | None = None


class Refusal(BaseModel):
    """Why an enrollment was refused (bad photos, no consent, bad form fields)."""

    vi: str
    en: str
    problems: list[ProblemPublic]


class RefusalAnswer(BaseModel):
    """The body of a 422 from enrollment: nothing was stored."""

    detail: Refusal


class GalleryPublished(BaseModel):
    """A site's gallery after a change: its newest version and whether the broker was told."""

    site: str
    version: int
    changed: bool
    announced: bool


class EnrollmentDone(BaseModel):
    student_id: int
    consent_id: int
    templates: int = Field(description="Templates stored by this request (one per photo).")
    model_pack: str
    galleries: list[GalleryPublished]


class ConsentWithdrawn(BaseModel):
    student_id: int
    consents_withdrawn: int
    templates_deleted: int
    galleries: list[GalleryPublished]


class EnrollmentStatusPublic(BaseModel):
    """The consent on record (null: none, or withdrawn) and how many templates per pack; the
    templates themselves are never shown."""

    student_id: int
    consent: ConsentPublic | None
    packs: list[PackTemplates]
