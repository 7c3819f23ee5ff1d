"""What the student sees and hears at the gate: a green blink and a beep, or a red one.

The loop calls one small interface; a gate with a status LED and buzzer on its GPIO header uses
:class:`GpioFeedback` (gpiozero, present on Raspberry Pi OS), anything else :class:`NoFeedback`.
Feedback must never slow the loop, so each signal runs on gpiozero's own background blinking.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Feedback(Protocol):
    """Signals for the person at the gate."""

    def recognised(self, person_id: str) -> None: ...

    def unknown(self) -> None: ...

    def card(self, accepted: bool) -> None: ...


class NoFeedback:
    """For gates without an LED or buzzer, and for tests and benchmarks."""

    def recognised(self, person_id: str) -> None:
        """Nothing to show."""

    def unknown(self) -> None:
        """Nothing to show."""

    def card(self, accepted: bool) -> None:
        """Nothing to show."""


class GpioFeedback:
    """An RGB or two-colour LED and an active buzzer on GPIO pins (BCM numbers)."""

    def __init__(self, green_pin: int, red_pin: int, buzzer_pin: int | None) -> None:
        from gpiozero import LED, Buzzer  # only on the gate itself

        self._green, self._red = LED(green_pin), LED(red_pin)
        self._buzzer = Buzzer(buzzer_pin) if buzzer_pin is not None else None

    def _signal(self, ok: bool) -> None:
        led = self._green if ok else self._red
        led.blink(on_time=0.6, off_time=0.1, n=1, background=True)
        if self._buzzer is not None:
            beeps = 1 if ok else 3
            self._buzzer.beep(on_time=0.08, off_time=0.08, n=beeps, background=True)

    def recognised(self, person_id: str) -> None:
        self._signal(True)

    def unknown(self) -> None:
        self._signal(False)

    def card(self, accepted: bool) -> None:
        self._signal(accepted)


def feedback_for(green_pin: int | None, red_pin: int | None, buzzer_pin: int | None) -> Feedback:
    """GPIO feedback when pins are configured and gpiozero can drive them, else none."""
    if green_pin is None or red_pin is None:
        return NoFeedback()
    try:
        return GpioFeedback(green_pin, red_pin, buzzer_pin)
    except Exception as exc:  # no gpiozero, or not on a board with GPIO
        log.warning("GPIO feedback unavailable", extra={"reason": str(exc)})
        return NoFeedback()
