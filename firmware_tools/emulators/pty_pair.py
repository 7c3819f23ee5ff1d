"""A raw pseudo-terminal pair, and the base of an emulator that serves one from a thread.

The emulator keeps the slave end open itself, so that a driver may open and close the port as
often as it likes (without that, the master reads EIO once the last slave closes). Writes are
non-blocking and dropped when the pty's buffer is full, as a UART's bytes are lost when nobody
listens. Both directions are paced at the emulated baud rate (10 bits per byte, 8N1), so timings
measured over the emulator include the line time a real reader costs; only the chip's own
processing time is missing (see ``reply_delay`` of the PN532 emulator).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
import time
import tty
from typing import Self

log = logging.getLogger(__name__)


class PtyPair:
    """A pty in raw mode; the emulator holds ``master``, a driver opens ``path``."""

    def __init__(self, baudrate: int | None = None) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: bytes pass as they are
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.byte_time = 10.0 / baudrate if baudrate else 0.0
        self.dropped = 0

    def read(self, timeout: float) -> bytes:
        """Bytes the driver wrote, waiting at most ``timeout``; b"" if none came.

        They are returned no sooner than the line could have carried them.
        """
        ready, _, _ = select.select([self.master], [], [], max(timeout, 0.0))
        if not ready:
            return b""
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # closed underneath us
                return b""
            raise
        time.sleep(len(data) * self.byte_time)
        return data

    def write(self, data: bytes) -> None:
        """Send ``data`` at the line's pace; what does not fit in the pty's buffer is lost."""
        if not data:
            return
        try:
            sent = os.write(self.master, data)
        except BlockingIOError:
            sent = 0
        self.dropped += len(data) - sent
        if self.byte_time:
            time.sleep(len(data) * self.byte_time)

    def close(self) -> None:
        """Close both ends; safe to call twice."""
        for fd in (self.master, self._slave):
            if fd >= 0:  # -1 once closed: never close a number the process has reused
                os.close(fd)
        self.master = self._slave = -1


class PtyEmulator:
    """An emulated device served by a background thread; a context manager.

    Subclasses implement ``_serve`` (the device's behaviour until ``stop`` is set) and
    ``_present``/``_withdraw`` (a card entering and leaving the field), which :meth:`tap` uses.
    """

    baudrate: int = 9600

    def __init__(self, *, baudrate: int | None = None) -> None:
        self.baudrate = baudrate or self.baudrate
        self._pty: PtyPair | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def path(self) -> str:
        """The serial port to give a driver."""
        return self._line().path

    def start(self) -> str:
        """Open the pty and start serving; returns :attr:`path`."""
        self._pty = PtyPair(self.baudrate)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self._pty.path

    def stop(self) -> None:
        """Stop serving and close the pty; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def tap(self, uid: str, hold_s: float) -> None:
        """Present the card ``uid`` (hex) for ``hold_s`` seconds, as a student does; blocks."""
        self._present(uid)
        try:
            time.sleep(hold_s)
        finally:
            self._withdraw(uid)

    def _run(self) -> None:
        try:
            self._serve(self._stop)
        except Exception:  # a broken emulator must be loud in the test log, not silent
            log.exception("emulator failed", extra={"emulator": type(self).__name__})

    def _line(self) -> PtyPair:
        if self._pty is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._pty

    def _serve(self, stop: threading.Event) -> None:
        """The device's behaviour; by default it only speaks when told to."""
        stop.wait()

    def _present(self, uid: str) -> None:
        raise NotImplementedError

    def _withdraw(self, uid: str) -> None:
        raise NotImplementedError
