"""Deltas from the server's side: the changes since a gate's version, built from the publish
history so the gate need not fetch the whole file.

The format, the changes and their replay are shared with the gate (:mod:`models.gallery_delta`,
which explains them). Templates come from the database at request time, so a delta that would
need the template of a student erased since cannot be built (:class:`DeltaUnavailable`): the
gate fetches the full file, which no longer holds them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
from sqlmodel import Session, col, select

from models.gallery_delta import (
    EMBEDDING_DTYPE,
    DeltaRow,
    DeltaStep,
    GalleryChange,
    GalleryDelta,
)
from server.db import in_chunks
from server.gallery_models import GalleryVersion
from server.models import FaceEnrollment


class DeltaUnavailable(LookupError):
    """No delta can take a gate from its version to the current one; the message says why."""


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
