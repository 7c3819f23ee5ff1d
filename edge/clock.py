"""The gate's clock for event stamps: wall-clock time that a hand-set step cannot bend mid-run.

An event's ``ts`` decides attendance (first ``in`` before ``late_after``: present, else late), so
it must be when the student passed. Reading the system clock for each stamp is right until the
clock steps: someone runs ``date -s``, a misconfigured RTC is read again, and from then on every
pass is stamped an hour early or late — students marked present who were late, or late who were
on time, and parents told the wrong hour. The monotonic clock never steps, so between two stamps
it says how much time really passed.

The rule: a stamp is the system clock's time, unless the system clock has moved away from
"last agreed time + monotonic time since" by more than :data:`STEP_TOLERANCE_S`. Then

* if the kernel says the clock is synchronised (NTP: chrony or timesyncd stepping a gate that
  booted with a stale time, the usual case on a Raspberry Pi without an RTC battery), the new
  time is the truth and the gate follows it;
* otherwise (a step by hand or by the RTC leaves the kernel unsynchronised: ``settimeofday``
  sets ``STA_UNSYNC``) the gate keeps counting from the last time it agreed with, and logs the
  step, until the system clock comes back into agreement or the agent restarts.

Slews (NTP's small corrections) stay within the tolerance and are followed as they happen.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)

STEP_TOLERANCE_S = 2.0
"""A jump of the system clock larger than this, against the monotonic clock, is a step."""

_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def kernel_synchronised() -> bool:
    """Whether the kernel considers the system clock synchronised (Linux ``adjtimex``, read
    only). True where that cannot be asked (another OS), so such gates follow their clock as
    before."""
    try:
        libc = _libc()
        timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read, change nothing
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return True
    return state != _TIME_ERROR if state >= 0 else True


class GateClock:
    """UTC time for event stamps; thread-safe (the loop and the card thread both stamp)."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        synchronised: Callable[[], bool] = kernel_synchronised,
        tolerance_s: float = STEP_TOLERANCE_S,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._synchronised = synchronised
        self._tolerance_s = tolerance_s
        self._lock = threading.Lock()
        self._anchor_mono = monotonic()
        self._anchor_wall = wall()
        self._ignored_step: float | None = None

    def now(self) -> datetime:
        """The time to stamp an event seen now."""
        return self.at(self._monotonic())

    def at(self, monotonic_at: float) -> datetime:
        """The time to stamp an event seen when ``time.monotonic()`` read ``monotonic_at``."""
        with self._lock:
            mono, wall = self._monotonic(), self._wall()
            steady = self._anchor_wall + (mono - self._anchor_mono)
            step = wall - steady
            if abs(step) <= self._tolerance_s or self._synchronised():
                if abs(step) > self._tolerance_s:
                    log.warning(
                        "system clock stepped while synchronised; following it",
                        extra={"step_s": round(step, 3)},
                    )
                self._anchor_mono, self._anchor_wall, self._ignored_step = mono, wall, None
                steady = wall
            elif self._ignored_step is None or abs(step - self._ignored_step) > self._tolerance_s:
                self._ignored_step = step
                log.warning(
                    "system clock stepped and is not synchronised; stamping events with the "
                    "time it had before (restart the agent to adopt the new time)",
                    extra={"step_s": round(step, 3)},
                )
        return datetime.fromtimestamp(steady - max(0.0, mono - monotonic_at), UTC)


SYSTEM_CLOCK = GateClock()
"""The clock of this process's gate."""
