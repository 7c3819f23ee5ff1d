"""Gallery changes, and deltas: the changes since a gate's version, so it need not fetch it all.

A site's gallery is never rebuilt from scratch: each publish loads the previous file and applies
one :class:`GalleryChange` — remove rows, add rows, replace the card table, in that order — with
:func:`apply_change`. A gate holding version ``since`` that replays the same changes with the
same function gets the same gallery, byte for byte (same row order, same version, since the
gallery numbers its own versions), so it can check the result against the signed notice's
sha256 and size exactly as it checks a downloaded file. A delta therefore needs no signature of
its own, and a gate that gets anything else simply fetches the full file.

Delta format ``cg-gallery-delta-1`` (JSON, :class:`GalleryDelta`): the site, pack, ``since``,
the target ``version`` with its file's ``sha256`` and ``size_bytes``, and ``steps``: per
publish after ``since``, the version it produced, the entry ids it removed, the rows it added
(entry id, student code, the float32 little-endian template in base64) and the new card table
or null. Templates come from the database at request time, so a delta that would need the
template of a student erased since cannot be built (:class:`DeltaUnavailable`): the gate
fetches the full file, which no longer holds them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, select

from models.gallery import Gallery
from server.db import in_chunks
from server.gallery_models import GalleryVersion
from server.models import FaceEnrollment

DELTA_FORMAT = "cg-gallery-delta-1"
EMBEDDING_DTYPE = np.dtype("<f4")  # as FaceEnrollment stores templates


class DeltaUnavailable(LookupError):
    """No delta can take a gate from its version to the current one; the message says why."""


@dataclass(frozen=True)
class GalleryChange:
    """What one publish does to the previous gallery; see the module docstring for the order.

    ``add`` holds ``(entry id, student code)`` pairs; ``cards`` is None when unchanged.
    """

    remove: tuple[str, ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    cards: dict[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.remove or self.add or self.cards is not None)

    def to_json(self) -> dict[str, Any]:
        """The form stored in ``gallery_version.changes``."""
        return {
            "remove": list(self.remove),
            "add": [list(pair) for pair in self.add],
            "cards": self.cards,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GalleryChange:
        """The change :meth:`to_json` stored."""
        return cls(
            remove=tuple(data["remove"]),
            add=tuple((entry, person) for entry, person in data["add"]),
            cards=data["cards"],
        )


def apply_change(gallery: Gallery, change: GalleryChange, embeddings: np.ndarray) -> int:
    """Apply ``change`` to ``gallery`` (``embeddings[i]`` is the template of ``change.add[i]``)
    and return the new version. Publishing and delta replay both go through here."""
    gallery.remove_entries(change.remove)
    if change.add:
        gallery.add_rows(
            [person for _, person in change.add], embeddings, [entry for entry, _ in change.add]
        )
    if change.cards is not None:
        gallery.set_cards(change.cards)
    return gallery.version


def entry_id(enrollment_id: int) -> str:
    """The gallery entry id of a face enrollment row."""
    return str(enrollment_id)


def templates(db: Session, entries: Sequence[str]) -> dict[str, np.ndarray]:
    """The stored templates of these entries that still exist, by entry id."""
    found: dict[str, np.ndarray] = {}
    for ids in in_chunks([int(entry) for entry in entries]):
        rows = db.exec(
            select(FaceEnrollment.id, FaceEnrollment.embedding).where(
                col(FaceEnrollment.id).in_(ids)
            )
        )
        found.update(
            (entry_id(row_id), np.frombuffer(blob, EMBEDDING_DTYPE)) for row_id, blob in rows
        )
    return found


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeltaRow(_Frozen):
    entry: str
    person: str
    embedding: str  # base64 of float32 little-endian


class DeltaStep(_Frozen):
    version: int
    remove: list[str]
    add: list[DeltaRow]
    cards: dict[str, str] | None


class GalleryDelta(_Frozen):
    """The steps from ``since`` to ``version`` (see the module docstring)."""

    format: Literal["cg-gallery-delta-1"] = DELTA_FORMAT
    site: str
    model_pack: str
    since: int
    version: int
    sha256: str
    size_bytes: int
    steps: list[DeltaStep]


def build_delta(db: Session, site: str, site_id: int, since: int, target: GalleryVersion) -> bytes:
    """The delta from ``since`` to ``target`` (the site's newest version) as JSON, or
    :class:`DeltaUnavailable` when ``since`` was never published here, a template it needs is
    gone, or it would not be smaller than the file itself."""
    if since >= target.version:
        raise DeltaUnavailable(f"version {since} is not older than {target.version}")
    rows = db.exec(
        select(GalleryVersion)
        .where(
            GalleryVersion.site_id == site_id,
            GalleryVersion.version >= since,
            GalleryVersion.version <= target.version,
        )
        .order_by(col(GalleryVersion.version))
    ).all()
    if not rows or rows[0].version != since:
        raise DeltaUnavailable(f"version {since} of {site} is not in the history")
    changes = [GalleryChange.from_json(row.changes) for row in rows[1:]]
    needed = [entry for change in changes for entry, _ in change.add]
    found = templates(db, needed)
    missing = len(set(needed) - found.keys())
    if missing:
        raise DeltaUnavailable(f"{missing} templates added since version {since} were erased")
    steps = [
        DeltaStep(
            version=row.version,
            remove=list(change.remove),
            add=[
                DeltaRow(
                    entry=entry,
                    person=person,
                    embedding=base64.b64encode(found[entry].tobytes()).decode(),
                )
                for entry, person in change.add
            ],
            cards=change.cards,
        )
        for row, change in zip(rows[1:], changes, strict=True)
    ]
    delta = GalleryDelta(
        site=site,
        model_pack=target.model_pack,
        since=since,
        version=target.version,
        sha256=target.sha256,
        size_bytes=target.size_bytes,
        steps=steps,
    ).model_dump_json()
    if len(delta) >= target.size_bytes:
        raise DeltaUnavailable(f"the delta from version {since} is not smaller than the file")
    return delta.encode()
