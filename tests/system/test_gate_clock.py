"""The gate's stamping clock (edge.clock) on its own: which steps of the system clock it follows.

The end-to-end case (an hour's jump mid-stream, attendance and messages on the real time) is
test_faults.test_gate_clock_jumps_back_and_forward_an_hour.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.clock import GateClock


class Clocks:
    """A wall clock and a monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.wall = 1_790_000_000.0
        self.mono = 1000.0
        self.synchronised = False

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def gate_clock(self) -> GateClock:
        return GateClock(lambda: self.wall, lambda: self.mono, lambda: self.synchronised)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize("step", [-3600.0, 3600.0, -30.0])
def test_a_step_by_hand_is_not_followed_until_the_clock_agrees_again(step: float) -> None:
    clocks = Clocks()
    clock = clocks.gate_clock()
    start = clocks.wall
    clocks.advance(10)
    assert clock.now() == at(start + 10)
    clocks.wall += step  # date -s: the kernel now says "unsynchronised"
    clocks.advance(5)
    assert clock.now() == at(start + 15)
    clocks.wall -= step  # set right again
    clocks.advance(5)
    assert clock.now() == at(start + 20)


def test_a_step_by_ntp_is_followed() -> None:
    clocks = Clocks()
    clock = clocks.gate_clock()
    clocks.wall += 3600.0  # booted with a stale time; timesyncd steps it and says "synchronised"
    clocks.synchronised = True
    assert clock.now() == at(clocks.wall)
    clocks.advance(7)
    clocks.synchronised = False  # a later hand-set step is measured from the corrected time
    assert clock.now() == at(clocks.wall)


def test_slews_within_the_tolerance_are_followed_and_a_past_moment_is_stamped_in_the_past() -> None:
    clocks = Clocks()
    clock = clocks.gate_clock()
    clocks.advance(60)
    clocks.wall += 0.5  # NTP slewing: well within the tolerance
    assert clock.now() == at(clocks.wall)
    assert clock.at(clocks.mono - 2.0) == at(clocks.wall - 2.0)
    assert clock.at(clocks.mono + 5.0) == at(clocks.wall)  # never in the future
