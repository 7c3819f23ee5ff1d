"""The 1:N face gallery that gates and the server share: enrolled embeddings and who they belong to.

Each person (a student code such as ``HS000123``) has several rows, one per enrollment photo, in one
L2-normalised float32 matrix. A search is one matrix product of the queries against every row, a
per-person maximum, and a top-2 over persons; the best person is *known* only when its score
reaches the threshold, and the runner-up is reported so callers can demand a margin.

A person's score is the **maximum** over their rows, not a mean of their top two: the threshold is
calibrated on single photo pairs, and a maximum keeps that meaning whether a student enrolled one
photo or ten, where a mean would penalise students with few photos (or one bad one).

Rows are kept sorted by person so the per-person maximum is one ``np.maximum.reduceat`` over the
score column; that grouping is rebuilt only when the gallery changes. Every change makes a new
immutable snapshot and swaps it in with one assignment, so a search running while another thread
adds or removes sees the old gallery or the new one, never a mix.

Timing: one query against 10,000 rows takes ~0.1-0.3 ms with one BLAS thread. OpenBLAS's thread
pool gains nothing at this size and, when the cores are busy (a gate running its detector), stalls
for ~8 ms, so processes that match on a loaded CPU should run BLAS single-threaded
(``OPENBLAS_NUM_THREADS=1``); onnxruntime keeps its own threads for the heavy work.

On disk (``to_bytes``) the matrix is float16 by default, half the size for gates. Rounding to
float16 moves each component by at most 2⁻¹¹ of itself, so a stored row moves by at most
2⁻¹¹·‖row‖ ≈ 4.9e-4 and no cosine score against a unit query changes by more than that (< 1e-3).

The gallery also carries the school's card table (card UID → person), because a gate needs both to
decide a pass and both must arrive together, signed and checksummed: a card table fetched apart
from the gallery could pair a new card list with old faces. A person may own cards without any
face rows (a student without biometric consent still badges in). A gallery without cards is
written in format 1, which gates that predate cards still read; one with cards in format 2, which
appends the table after the ids.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

MAGIC = b"CGGAL"
FORMAT_VERSION = 1
CARDS_FORMAT_VERSION = 2
"""Format 1 plus the card table; written only when there are cards, so old gates keep reading."""
NO_SCORE = -1.0
"""The score reported when there was nothing to compare: an empty gallery, no second person,
or a zero / non-finite query. It is the lowest cosine similarity, so it never passes a threshold."""

# magic, format, bytes per stored value (2 or 4), pack-name length, dim, rows, gallery version,
# threshold, person-id blob length, entry-id blob length; all little-endian.
_HEADER = struct.Struct("<5sBBBIIQdII")
_CARDS_HEADER = struct.Struct("<I")  # format 2: card-table blob length, after the header
_CARD_UID = re.compile(r"(?:[0-9A-F]{2}){4,10}")  # 4-10 bytes in upper-case hex, as on the wire
_DIGEST_SIZE = hashlib.sha256().digest_size
_SEPARATOR = "\x00"  # between ids in the blobs, so ids may hold any character but NUL
_STORED_DTYPES = {2: np.dtype("<f2"), 4: np.dtype("<f4")}
_UNIT_TOLERANCE = 1e-3  # float16 storage moves a row's norm by at most ~4.9e-4


class GalleryError(ValueError):
    """Bad input to the gallery or a gallery file that cannot be trusted; the message says which."""


@dataclass(frozen=True, slots=True)
class Match:
    """The outcome of one query.

    ``best_id``/``score`` are the closest person and their similarity even when below the
    threshold (for calibration); ``person_id`` is that person only when ``known``, else None.
    """

    best_id: str | None
    score: float
    known: bool
    runner_up_id: str | None
    runner_up_score: float

    @property
    def person_id(self) -> str | None:
        """The recognised person, or None for an unknown face."""
        return self.best_id if self.known else None

    @property
    def margin(self) -> float:
        """How far the best person is ahead of the next one (large when there is no other)."""
        return self.score - self.runner_up_score


@dataclass(frozen=True, slots=True)
class Matches:
    """The outcomes of a batch of queries as parallel arrays, one entry per query.

    Arrays, not a list of ``Match``, so a batch costs no Python loop; index it for a ``Match``.
    ``gallery_version`` is the version the search ran against, which is what an event records.
    """

    best_ids: NDArray[np.object_]
    scores: NDArray[np.float32]
    known: NDArray[np.bool_]
    runner_up_ids: NDArray[np.object_]
    runner_up_scores: NDArray[np.float32]
    gallery_version: int

    @property
    def person_ids(self) -> NDArray[np.object_]:
        """The recognised person per query, None where unknown."""
        return np.where(self.known, self.best_ids, None)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index: int) -> Match:
        return Match(
            best_id=self.best_ids[index],
            score=float(self.scores[index]),
            known=bool(self.known[index]),
            runner_up_id=self.runner_up_ids[index],
            runner_up_score=float(self.runner_up_scores[index]),
        )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One consistent gallery state: rows grouped by person, plus the grouping a search needs."""

    version: int
    matrix: NDArray[np.float32]  # (rows, dim), unit rows, sorted by person
    person_ids: NDArray[np.str_]  # (rows,)
    entry_ids: NDArray[np.str_]  # (rows,), "" where a row has no entry id
    persons: NDArray[np.object_]  # (persons,) sorted unique person ids, as Python str
    starts: NDArray[np.intp]  # (persons,) first row of each person
    cards: Mapping[str, str]  # card UID -> person id, read-only

    @classmethod
    def build(
        cls,
        version: int,
        matrix: NDArray[np.float32],
        person_ids: NDArray[np.str_],
        entry_ids: NDArray[np.str_],
        cards: Mapping[str, str] | None = None,
    ) -> _Snapshot:
        order = np.argsort(person_ids, kind="stable")
        matrix = np.ascontiguousarray(matrix[order], dtype=np.float32)
        matrix.flags.writeable = False
        person_ids, entry_ids = person_ids[order], entry_ids[order]
        first = np.ones(len(person_ids), dtype=bool)
        first[1:] = person_ids[1:] != person_ids[:-1]
        starts = np.flatnonzero(first)
        persons = person_ids[starts].astype(object)
        table = MappingProxyType(dict(cards or {}))
        return cls(version, matrix, person_ids, entry_ids, persons, starts, table)


class Gallery:
    """Enrolled face embeddings of one model pack, searchable 1:N, versioned and serialisable.

    The dimension and pack are fixed at creation: embeddings of another model are meaningless
    against these, so a wrong dimension is refused rather than silently compared.
    """

    def __init__(self, pack: str, dim: int, threshold: float) -> None:
        if not isinstance(pack, str) or not 0 < len(pack.encode()) < 256:
            raise GalleryError(f"pack name must be 1-255 bytes of text, got {pack!r}")
        if not isinstance(dim, int) or not 0 < dim < 2**32:
            raise GalleryError(f"embedding dimension must be a positive integer, got {dim!r}")
        self._pack = pack
        self._dim = dim
        self._threshold = _check_threshold(threshold)
        self._lock = threading.Lock()  # writers only; searches read the current snapshot
        empty = np.array([], dtype=str)
        self._snapshot = _Snapshot.build(0, np.zeros((0, dim), np.float32), empty, empty)

    @property
    def pack(self) -> str:
        """The model pack whose embeddings this gallery holds."""
        return self._pack

    @property
    def dim(self) -> int:
        """The embedding dimension every row and query must have."""
        return self._dim

    @property
    def threshold(self) -> float:
        """The default cosine similarity a best person must reach to be known."""
        return self._threshold

    @property
    def version(self) -> int:
        """Increases by one on every change; gates compare it to know they are current."""
        return self._snapshot.version

    @property
    def persons(self) -> tuple[str, ...]:
        """Everyone enrolled, sorted."""
        return tuple(self._snapshot.persons)

    def __len__(self) -> int:
        """The number of rows (enrollment embeddings), not persons."""
        return len(self._snapshot.matrix)

    def add(
        self, person_id: str, embeddings: ArrayLike, entry_ids: Sequence[str] | None = None
    ) -> int:
        """Enroll one or more embeddings of a person and return the new version.

        ``entry_ids``, one per embedding and unique in the gallery, let a single photo be removed
        later. Zero, non-finite or wrongly sized embeddings and clashing ids raise ``GalleryError``
        and leave the gallery unchanged.
        """
        rows = len(np.atleast_2d(np.asarray(embeddings)))
        return self.add_rows([person_id] * rows, embeddings, entry_ids)

    def add_rows(
        self,
        person_ids: Sequence[str],
        embeddings: ArrayLike,
        entry_ids: Sequence[str] | None = None,
    ) -> int:
        """Enroll many rows at once, ``person_ids[i]`` owning ``embeddings[i]``; one new version.

        Loading a whole school (thousands of students) row by row would rebuild the grouping
        once per student; this rebuilds it once. Checks and errors are those of :meth:`add`.
        """
        for person_id in set(person_ids):
            _check_id(person_id, "person id")
        unit, valid = self._unit_rows(embeddings)
        if not len(unit):
            raise GalleryError(f"no embeddings given for {sorted(set(person_ids))!r}")
        if len(person_ids) != len(unit):
            raise GalleryError(f"{len(person_ids)} person ids given for {len(unit)} embeddings")
        if not valid.all():
            bad = int(np.argmin(valid))
            raise GalleryError(f"embedding {bad} of {person_ids[bad]!r} is zero or not finite")
        if entry_ids is None:
            entries = np.full(len(unit), "")
        else:
            entries = _entry_array(entry_ids)
            if len(entries) != len(unit):
                raise GalleryError(f"{len(entries)} entry ids given for {len(unit)} embeddings")
            named = entries[entries != ""]
            if len(np.unique(named)) != len(named):
                raise GalleryError("entry ids repeat within the call")
        with self._lock:
            current = self._snapshot
            clashes = entries[(entries != "") & np.isin(entries, current.entry_ids)]
            if len(clashes):
                raise GalleryError(f"entry ids already in the gallery: {sorted(set(clashes))}")
            self._snapshot = _Snapshot.build(
                current.version + 1,
                np.concatenate([current.matrix, unit]),
                np.concatenate([current.person_ids, np.array(person_ids, dtype=str)]),
                np.concatenate([current.entry_ids, entries]),
                current.cards,
            )
            return self._snapshot.version

    def remove_person(self, person_id: str) -> int:
        """Remove every row and card of a person and return the version (erasure).

        An absent person changes nothing.
        """
        _check_id(person_id, "person id")
        with self._lock:
            current = self._snapshot
            cards = {uid: owner for uid, owner in current.cards.items() if owner != person_id}
            return self._keep(current.person_ids != person_id, cards)

    @property
    def cards(self) -> Mapping[str, str]:
        """The card table, UID (upper-case hex) → person id; read-only."""
        return self._snapshot.cards

    def card_owner(self, uid: str) -> str | None:
        """The person a card belongs to, or None for a card not in the table."""
        return self._snapshot.cards.get(uid)

    def set_cards(self, cards: Mapping[str, str]) -> int:
        """Replace the card table (UID → person id) and return the new version.

        UIDs are 4-10 bytes in upper-case hex, as readers report them; a bad UID or person id
        raises ``GalleryError`` and changes nothing. An identical table changes nothing.
        """
        table = _check_cards(cards)
        with self._lock:
            current = self._snapshot
            if table == dict(current.cards):
                return current.version
            self._snapshot = _Snapshot.build(
                current.version + 1,
                current.matrix,
                current.person_ids,
                current.entry_ids,
                table,
            )
            return self._snapshot.version

    def remove_entries(self, entry_ids: Iterable[str]) -> int:
        """Remove the rows with these entry ids and return the version; unknown ids are ignored."""
        entries = _entry_array(entry_ids)
        with self._lock:
            return self._keep(~np.isin(self._snapshot.entry_ids, entries))

    def search(self, queries: ArrayLike, threshold: float | None = None) -> Matches:
        """Match each query (one ``(dim,)`` vector or ``(n, dim)``) against everyone enrolled.

        Queries are L2-normalised here; a zero or non-finite query, or an empty gallery, gives an
        unknown with ``NO_SCORE`` rather than an error or NaN. ``threshold`` overrides the
        gallery's default for this call.
        """
        limit = self._threshold if threshold is None else _check_threshold(threshold)
        snapshot = self._snapshot
        unit, valid = self._unit_rows(queries)
        count, people = len(unit), len(snapshot.persons)
        best_ids = np.full(count, None, dtype=object)
        runner_up_ids = np.full(count, None, dtype=object)
        scores = np.full(count, NO_SCORE, dtype=np.float32)
        runner_up_scores = np.full(count, NO_SCORE, dtype=np.float32)
        if people and count:
            per_row = snapshot.matrix @ unit.T  # (rows, queries)
            per_person = np.maximum.reduceat(per_row, snapshot.starts, axis=0)
            # kth = people - 2 leaves the runner-up at [-2] and the best at [-1], already ordered.
            top = np.argpartition(per_person, max(people - 2, 0), axis=0)[-2:]
            top_scores = np.clip(np.take_along_axis(per_person, top, axis=0), -1.0, 1.0)
            scores[valid] = top_scores[-1, valid]
            best_ids[valid] = snapshot.persons[top[-1, valid]]
            if people > 1:
                runner_up_scores[valid] = top_scores[0, valid]
                runner_up_ids[valid] = snapshot.persons[top[0, valid]]
        known = valid & bool(people) & (scores >= limit)
        return Matches(best_ids, scores, known, runner_up_ids, runner_up_scores, snapshot.version)

    def to_bytes(self, *, half: bool = True) -> bytes:
        """Serialise with a header and a sha256 of everything before it.

        ``half`` stores the matrix as float16 (half the size; scores move by < 5e-4, see the
        module docstring); ``half=False`` keeps float32 bit for bit.
        """
        snapshot = self._snapshot
        stored = _STORED_DTYPES[2 if half else 4]
        pack = self._pack.encode()
        persons = _SEPARATOR.join(snapshot.person_ids.tolist()).encode()
        entries = _SEPARATOR.join(snapshot.entry_ids.tolist()).encode()
        pairs = (f"{uid}{_SEPARATOR}{owner}" for uid, owner in snapshot.cards.items())
        cards = _SEPARATOR.join(pairs).encode()
        header = _HEADER.pack(
            MAGIC,
            CARDS_FORMAT_VERSION if cards else FORMAT_VERSION,
            stored.itemsize,
            len(pack),
            self._dim,
            len(snapshot.matrix),
            snapshot.version,
            self._threshold,
            len(persons),
            len(entries),
        )
        if cards:
            header += _CARDS_HEADER.pack(len(cards))
        values = snapshot.matrix.astype(stored).tobytes()
        body = b"".join([header, pack, values, persons, entries, cards])
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Gallery:
        """Rebuild a gallery from ``to_bytes`` output, or raise ``GalleryError``.

        Every field is checked (magic, format, checksum, sizes, ids, unit rows) before anything is
        built, so a damaged file never yields a partial gallery.
        """
        if not data.startswith(MAGIC):
            raise GalleryError("not a campusgate gallery (wrong magic)")
        if len(data) < _HEADER.size + _DIGEST_SIZE:
            raise GalleryError(f"gallery truncated: {len(data)} bytes is shorter than a header")
        body, digest = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
        if hashlib.sha256(body).digest() != digest:
            raise GalleryError("gallery checksum mismatch: the file is corrupted or truncated")
        _, fmt, itemsize, pack_len, dim, rows, version, threshold, persons_len, entries_len = (
            _HEADER.unpack_from(body)
        )
        if fmt not in (FORMAT_VERSION, CARDS_FORMAT_VERSION):
            raise GalleryError(
                f"gallery format {fmt} is not supported "
                f"(expected {FORMAT_VERSION} or {CARDS_FORMAT_VERSION})"
            )
        stored = _STORED_DTYPES.get(itemsize)
        if stored is None:
            raise GalleryError(f"gallery stores {itemsize}-byte values; only 2 or 4 are known")
        header_size, cards_len = _HEADER.size, 0
        if fmt == CARDS_FORMAT_VERSION:
            if len(body) < header_size + _CARDS_HEADER.size:
                raise GalleryError("gallery truncated: no card-table length")
            (cards_len,) = _CARDS_HEADER.unpack_from(body, header_size)
            header_size += _CARDS_HEADER.size
        sizes = [header_size, pack_len, rows * dim * itemsize, persons_len, entries_len, cards_len]
        if sum(sizes) != len(body):
            raise GalleryError(
                f"gallery sizes disagree: header says {sum(sizes)}, body has {len(body)}"
            )
        ends = np.cumsum(sizes).tolist()
        try:
            pack = body[ends[0] : ends[1]].decode()
            person_ids = _decode_ids(body[ends[2] : ends[3]], rows)
            entry_ids = _decode_ids(body[ends[3] : ends[4]], rows)
            cards = _decode_cards(body[ends[4] : ends[5]])
        except UnicodeDecodeError as exc:
            raise GalleryError(f"gallery ids are not UTF-8: {exc}") from exc
        matrix = np.frombuffer(body, stored, rows * dim, ends[1]).reshape(rows, dim)
        matrix = matrix.astype(np.float32)
        norms = np.linalg.norm(matrix, axis=1)
        if not np.all(np.abs(norms - 1.0) <= _UNIT_TOLERANCE):
            raise GalleryError("gallery rows are not unit vectors")
        if (person_ids == "").any():
            raise GalleryError("gallery has a row without a person id")
        named = entry_ids[entry_ids != ""]
        if len(np.unique(named)) != len(named):
            raise GalleryError("gallery entry ids are not unique")
        gallery = cls(pack, dim, threshold)
        gallery._snapshot = _Snapshot.build(version, matrix, person_ids, entry_ids, cards)
        return gallery

    def save(self, path: str | os.PathLike[str], *, half: bool = True) -> None:
        """Write ``to_bytes`` atomically: readers see the old file or the new one, never a part."""
        target = Path(path)
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.to_bytes(half=half))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Gallery:
        """Read a gallery written by ``save``; an unreadable or damaged file raises GalleryError."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise GalleryError(f"cannot read gallery {path}: {exc}") from exc
        return cls.from_bytes(data)

    def _keep(self, keep: NDArray[np.bool_], cards: Mapping[str, str] | None = None) -> int:
        """Swap in the snapshot of the kept rows and ``cards`` (default: unchanged); the caller
        holds the lock. A no-op if every row and card is kept."""
        current = self._snapshot
        cards = current.cards if cards is None else cards
        if keep.all() and len(cards) == len(current.cards):
            return current.version
        self._snapshot = _Snapshot.build(
            current.version + 1,
            current.matrix[keep],
            current.person_ids[keep],
            current.entry_ids[keep],
            cards,
        )
        return self._snapshot.version

    def _unit_rows(self, vectors: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """L2-normalise rows; rows that are zero or not finite become zero and are marked invalid.

        Norms are taken in float64 so no finite float32 input overflows into a false invalid.
        """
        array = np.asarray(vectors, dtype=np.float64)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or array.shape[1] != self._dim:
            raise GalleryError(
                f"embeddings of shape {np.shape(vectors)} do not fit this gallery of pack "
                f"{self._pack!r}, which holds {self._dim}-d embeddings"
            )
        norms = np.sqrt(np.einsum("ij,ij->i", array, array))
        valid = np.isfinite(norms) & (norms > 0.0)
        unit = np.where(valid[:, None], array / np.where(valid, norms, 1.0)[:, None], 0.0)
        return unit.astype(np.float32), valid


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not -1.0 < value <= 1.0:
        raise GalleryError(f"threshold is a cosine similarity in (-1, 1], got {threshold!r}")
    return value


def _check_id(value: object, what: str) -> None:
    if not isinstance(value, str) or not value or _SEPARATOR in value:
        raise GalleryError(f"{what} must be non-empty text without NUL, got {value!r}")


def _entry_array(entry_ids: Iterable[str]) -> NDArray[np.str_]:
    ids = list(entry_ids)
    for entry_id in ids:
        _check_id(entry_id, "entry id")
    return np.array(ids, dtype=str)


def _check_cards(cards: Mapping[str, str]) -> dict[str, str]:
    """A validated copy of a card table, or ``GalleryError`` naming the first bad entry."""
    table = dict(cards)
    for uid, owner in table.items():
        if not isinstance(uid, str) or not _CARD_UID.fullmatch(uid):
            raise GalleryError(f"card UID must be 4-10 bytes in upper-case hex, got {uid!r}")
        _check_id(owner, f"owner of card {uid}")
    return table


def _decode_cards(blob: bytes) -> dict[str, str]:
    """The card table from its blob: UID and owner pairs separated by NUL."""
    if not blob:
        return {}
    fields = blob.decode().split(_SEPARATOR)
    if len(fields) % 2:
        raise GalleryError("gallery card table has a UID without an owner")
    table = dict(zip(fields[::2], fields[1::2], strict=True))
    if len(table) != len(fields) // 2:
        raise GalleryError("gallery card table lists a UID twice")
    return _check_cards(table)


def _decode_ids(blob: bytes, rows: int) -> NDArray[np.str_]:
    ids = blob.decode().split(_SEPARATOR) if rows else []
    if len(ids) != rows:
        raise GalleryError(f"gallery has {len(ids)} ids for {rows} rows")
    return np.array(ids, dtype=str)
