"""Tables of gallery publishing: every gallery version signed for a site.

Kept apart from :mod:`server.models` because only :mod:`server.gallery_publish` writes them.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from server.models import PACK_REGEX, utc_now
from server.sqltypes import UtcDateTime


class GalleryVersion(SQLModel, table=True):
    """One published gallery of a site: what the signed notice said, and how it came about.

    ``version`` is the gallery's own version (it grows by one per change, so by one to three
    per publish) and never goes down for a site while its pack stays the same.

    ``data`` (the file gates fetch) and ``members`` (its rows as ``[entry id, student code]``
    pairs, the state the next publish compares against) are kept for the newest version only:
    older files would still hold the templates of students erased since.

    ``changes`` is what this publish did to the previous version, in the order it did it
    (``remove`` entry ids, ``add`` ``[entry id, student code]`` pairs, then ``cards``: the new
    card table or null). Replaying the changes since an older version is a delta; the
    templates they add are read from ``face_enrollment`` when a delta is asked for, so an
    erased student's template is never served again.
    """

    __tablename__ = "gallery_version"
    __table_args__ = (UniqueConstraint("site_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE")  # led by the unique key
    version: int = Field(ge=0)
    model_pack: str = Field(max_length=64, regex=PACK_REGEX)
    entries: int = Field(ge=0, description="Template rows in the file.")
    sha256: str = Field(max_length=64, min_length=64)
    size_bytes: int = Field(ge=0)
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=128, description="Base64 Ed25519 over the notice fields.")
    reason: str = Field(max_length=64, description="Why it was published, e.g. 'enrollment'.")
    created_at: datetime = Field(sa_type=UtcDateTime, default_factory=utc_now)
    created_by: int | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    data: bytes | None = Field(default=None, sa_type=LargeBinary)
    members: list[Any] | None = Field(default=None, sa_type=JSON)
    changes: dict[str, Any] = Field(sa_type=JSON)
