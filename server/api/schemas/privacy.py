"""What an erasure reports."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.api.schemas.enrollment import GalleryPublished


class ErasureSummary(BaseModel):
    """What an erasure removed; the attendance rows stay, anonymised, for the school's counts."""

    student_id: int
    face_enrollments: int
    consents: int
    cards: int
    guardian_links: int
    guardians: int
    leave_requests: int
    notifications: int
    gate_events_scrubbed: int
    attendance_kept: int
    audit_entries_scrubbed: int
    galleries: list[GalleryPublished] = Field(
        default_factory=list, description="The school's galleries, republished without them."
    )
