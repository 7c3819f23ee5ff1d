"""Card + face: a card tap and the faces recognised around it become one attendance decision.

Without the gate's ``require_face`` policy a tap is a ``card`` event at once: the card's student,
or no student for a UID nobody owns (reported, never dropped: it may be a new card not yet in
the gallery, or a card from another school). Faces pass straight through as ``face`` events.

With ``require_face`` a known card opens a window of ``window_s`` on both sides of the tap: a
student often looks at the camera while walking up and taps a moment later, or taps first and
looks up after. Then:

- the owner's face recognised in the window gives ONE ``face+card`` event (``face_check="match"``)
  carrying the face's fields; that face is not also sent as its own ``face`` event;
- otherwise, when the window ends, a ``card`` event with ``face_check="mismatch"`` if some other
  face (another student, or an unknown one) was recognised in it, else ``"missing"``.

The verdict waits for the window's end rather than condemning the card at the first other face,
because at a queue the camera routinely recognises the student before or behind the card holder
first; a face that another tap has already claimed as its owner's is no evidence against this
card, whatever order things arrived in. To keep the promise that a face is not sent twice, faces
are held for ``window_s`` while the policy is on (a tap may still claim them), then released as
``face`` events. A tap of a card whose window is already open is the same tap. A UID nobody owns
has no face to compare, so it is reported at once (``face_check`` null).

The class is plain and synchronous with an injectable clock: the gate calls :meth:`card`,
:meth:`face` and, a few times a second, :meth:`tick`, and sends whatever they return.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

from edge.cards.reader import Tap

EventKind = Literal["face", "card", "face+card"]
FaceCheck = Literal["match", "mismatch", "missing"]


class FaceSighting(Protocol):
    """What fusion needs of a recognised face (the loop's ``Pass`` has it)."""

    @property
    def person_id(self) -> str | None: ...

    @property
    def captured_at(self) -> float: ...


Face = TypeVar("Face", bound=FaceSighting)


@dataclass(frozen=True, slots=True)
class Outcome(Generic[Face]):
    """One decision to send as an event: which kind, whose, and from which tap and face."""

    kind: EventKind
    student_id: str | None
    tap: Tap | None = None
    face: Face | None = None
    face_check: FaceCheck | None = None

    @property
    def decided_at(self) -> float:
        """When the last input of the decision was seen (monotonic): the later of tap and face."""
        times = [self.tap.at] if self.tap is not None else []
        if self.face is not None:
            times.append(self.face.captured_at)
        return max(times)

    @property
    def accepted(self) -> bool:
        """For a card decision, whether the gate shows green: a known card, face not refuted."""
        return self.student_id is not None and self.face_check in (None, "match")


@dataclass(eq=False)
class _Window(Generic[Face]):
    tap: Tap
    owner: str
    others: list[Face] = field(default_factory=list)  # unexplained faces seen in the window


class CardFaceFusion(Generic[Face]):
    """Pairs card taps with recognised faces under the gate's policy; thread-safe."""

    def __init__(
        self,
        owner_of: Callable[[str], str | None],
        *,
        window_s: float = 5.0,
        require_face: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"the face window must be positive, got {window_s}")
        self._owner_of = owner_of
        self.window_s = window_s
        self.require_face = require_face
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: list[_Window[Face]] = []
        self._faces: list[Face] = []  # held while a tap could still claim them

    def card(self, tap: Tap) -> list[Outcome[Face]]:
        """A card was tapped: its decision now, or later from :meth:`face` or :meth:`tick`."""
        with self._lock:
            outcomes = self._expire(self._clock())
            owner = self._owner_of(tap.uid)
            if not self.require_face or owner is None:
                outcomes.append(Outcome("card", owner, tap=tap))
                return outcomes
            if any(w.tap.uid == tap.uid for w in self._windows):
                return outcomes  # the same card again while its window is open: one tap
            window = _Window[Face](tap, owner)
            earlier = [f for f in self._faces if self._near(f, tap)]
            match = next((f for f in earlier if f.person_id == owner), None)
            if match is not None:
                self._faces.remove(match)
                self._explained(match)
                outcomes.append(self._matched(window, match))
            else:
                window.others.extend(earlier)
                self._windows.append(window)
            return outcomes

    def face(self, face: Face) -> list[Outcome[Face]]:
        """A face was recognised (or seen and not recognised): its event now, held, or merged."""
        with self._lock:
            outcomes = self._expire(self._clock())
            if not self.require_face:
                outcomes.append(Outcome("face", face.person_id, face=face))
                return outcomes
            window = next(
                (w for w in self._windows if w.owner == face.person_id and self._near(face, w.tap)),
                None,
            )
            if window is not None:
                self._windows.remove(window)
                outcomes.append(self._matched(window, face))
                return outcomes
            for open_window in self._windows:
                if self._near(face, open_window.tap):
                    open_window.others.append(face)
            self._faces.append(face)
            return outcomes

    def tick(self) -> list[Outcome[Face]]:
        """Decisions whose time has come: windows that ended, faces no tap can claim any more."""
        with self._lock:
            return self._expire(self._clock())

    def flush(self) -> list[Outcome[Face]]:
        """Everything still pending, decided as it stands now (the gate is stopping)."""
        with self._lock:
            return self._expire(float("inf"))

    # --- under the lock ----------------------------------------------------------------------
    def _near(self, face: Face, tap: Tap) -> bool:
        return abs(face.captured_at - tap.at) <= self.window_s

    def _matched(self, window: _Window[Face], face: Face) -> Outcome[Face]:
        self._explained(face)
        return Outcome("face+card", window.owner, tap=window.tap, face=face, face_check="match")

    def _explained(self, face: Face) -> None:
        """``face`` is its owner's tap's: it counts against no other card."""
        for window in self._windows:
            window.others = [f for f in window.others if f is not face]

    def _expire(self, now: float) -> list[Outcome[Face]]:
        outcomes: list[Outcome[Face]] = []
        closing = not self.require_face  # the policy was switched off: nothing waits any more
        for window in [w for w in self._windows if closing or now > w.tap.at + self.window_s]:
            self._windows.remove(window)
            check: FaceCheck | None = "mismatch" if window.others else "missing"
            outcomes.append(
                Outcome("card", window.owner, tap=window.tap, face_check=None if closing else check)
            )
        for face in [f for f in self._faces if closing or now > f.captured_at + self.window_s]:
            self._faces.remove(face)
            outcomes.append(Outcome("face", face.person_id, face=face))
        return outcomes
