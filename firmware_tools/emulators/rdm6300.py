"""An RDM6300 emulator: repeats a card's frame every ``repeat_s`` while the card is held."""

from __future__ import annotations

import threading

from edge.cards.rdm6300 import encode_frame
from firmware_tools.emulators.pty_pair import PtyEmulator


class RDM6300Emulator(PtyEmulator):
    """A 125 kHz reader at 9600 baud; tests hold cards and inject bad checksums and noise."""

    baudrate = 9600

    def __init__(self, *, repeat_s: float = 0.1, baudrate: int | None = None) -> None:
        super().__init__(baudrate=baudrate)
        self.repeat_s = repeat_s
        self._lock = threading.Lock()
        self._held: bytes | None = None
        self._corrupt = 0
        self.frames_sent = 0

    def place(self, uid: str) -> None:
        """Hold the EM4100 card ``uid`` (10 hex digits) in the field."""
        data = bytes.fromhex(uid)
        encode_frame(data)  # refuses a UID that is not 5 bytes before anything changes
        with self._lock:
            self._held = data

    def remove(self) -> None:
        """Take the card away."""
        with self._lock:
            self._held = None

    def corrupt_next(self, count: int = 1) -> None:
        """Send the next ``count`` frames with a wrong checksum."""
        with self._lock:
            self._corrupt += count

    def send_noise(self, data: bytes) -> None:
        """Write raw bytes (a glitch on the line)."""
        self._line().write(data)

    def _serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                held, corrupt = self._held, self._corrupt > 0
                if held is not None and corrupt:
                    self._corrupt -= 1
            if held is not None:
                frame = bytearray(encode_frame(held))
                if corrupt:
                    frame[11:13] = f"{int(frame[11:13], 16) ^ 0xFF:02X}".encode()
                self._line().write(bytes(frame))
                self.frames_sent += 1
            stop.wait(self.repeat_s)

    def _present(self, uid: str) -> None:
        self.place(uid)

    def _withdraw(self, uid: str) -> None:
        self.remove()
