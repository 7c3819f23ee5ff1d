"""Gallery changes and deltas, the same code on the server that publishes and the gate that
replays.

A site's gallery is never rebuilt from scratch: each publish loads the previous file and applies
one :class:`GalleryChange` — remove rows, add rows, replace the card table, in that order — with
:func:`apply_change`. A gate holding version ``since`` that replays the same changes with the
same function (:func:`replay`) gets the same gallery, byte for byte (same row order, same
version, since the gallery numbers its own versions), so it checks the result against the signed
notice's sha256 and size exactly as it checks a downloaded file. A delta therefore needs no
signature of its own, and a gate that gets anything else simply fetches the full file.

Delta format ``cg-gallery-delta-1`` (JSON, :class:`GalleryDelta`): the site, pack, ``since``,
the target ``version`` with its file's ``sha256`` and ``size_bytes``, and ``steps``: per
publish after ``since``, the version it produced, the entry ids it removed, the rows it added
(entry id, student code, the float32 little-endian template in base64) and the new card table
or null. The server builds them (``server.gallery_delta``); a school's morning changes are a few
kilobytes where the file of a 2,000-student school is megabytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from models.gallery import Gallery, GalleryError

DELTA_FORMAT = "cg-gallery-delta-1"
EMBEDDING_DTYPE = np.dtype("<f4")  # as the server stores templates and deltas carry them


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


def replay(delta: GalleryDelta, gallery: Gallery) -> None:
    """Apply every step of ``delta`` to ``gallery`` (which must be at ``delta.since``), as the
    server applied them when it published. Raises GalleryError when a step does not fit: a
    template of the wrong size, or a step that lands on another version than it names."""
    if gallery.version != delta.since:
        raise GalleryError(f"the delta starts at version {delta.since}, not {gallery.version}")
    for step in delta.steps:
        try:
            rows = [
                np.frombuffer(base64.b64decode(row.embedding, validate=True), EMBEDDING_DTYPE)
                for row in step.add
            ]
        except (binascii.Error, ValueError) as exc:
            raise GalleryError(f"step {step.version}: a template is not float32: {exc}") from None
        if any(row.shape != (gallery.dim,) for row in rows):
            raise GalleryError(f"step {step.version}: a template is not {gallery.dim} numbers")
        embeddings = np.array(rows, np.float32).reshape(len(rows), gallery.dim)
        change = GalleryChange(
            tuple(step.remove), tuple((row.entry, row.person) for row in step.add), step.cards
        )
        if apply_change(gallery, change, embeddings) != step.version:
            raise GalleryError(f"step {step.version} gave version {gallery.version}")
