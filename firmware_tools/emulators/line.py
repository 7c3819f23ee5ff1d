"""A line reader emulator: prints each tapped card as a line of text, like a desk reader."""

from __future__ import annotations

from firmware_tools.emulators.pty_pair import PtyEmulator


class LineEmulator(PtyEmulator):
    """Writes ``template.format(uid=…)`` and an end of line for each tap.

    ``template`` lets a test imitate a model's format (``"UID: {uid}"``, a decimal number…).
    """

    baudrate = 9600

    def __init__(
        self, *, template: str = "{uid}", end: str = "\r\n", baudrate: int | None = None
    ) -> None:
        super().__init__(baudrate=baudrate)
        self.template = template
        self.end = end

    def send_line(self, text: str) -> None:
        """Write ``text`` and the end of line, as the reader would."""
        self._line().write((text + self.end).encode("ascii"))

    def send_noise(self, data: bytes) -> None:
        """Write raw bytes (a glitch on the line)."""
        self._line().write(data)

    def _present(self, uid: str) -> None:
        self.send_line(self.template.format(uid=uid))

    def _withdraw(self, uid: str) -> None:
        """A line reader says nothing when a card leaves."""
