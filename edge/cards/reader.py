"""Card readers on a serial port behind one small interface: open, read taps, close.

The communicator pattern of STYLE.md: the gate and ``gatectl reader test`` use only
:class:`CardReader`; each kind (PN532, RDM6300, a line reader) implements one method, ``_sight``,
that looks once for a card in the field, and the base turns those sightings into taps. A card held
on a reader is seen again and again; the base reports it once and counts it removed only after it
has been absent from ``absent_polls`` sightings in a row, so a student who keeps the card on the
reader is one tap and one who lifts it and taps again is two.

A reader is chosen from its configuration (:class:`ReaderConfig`, pydantic, validated at start-up
with each kind's own options), the way a model pack picks its code from what its files are.
"""

from __future__ import annotations

import errno
import logging
import termios
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import serial
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

log = logging.getLogger(__name__)

ReaderKind = Literal["pn532", "rdm6300", "line"]
CardKind = Literal["iso14443a", "iso14443b", "em4100", "unknown"]
"""The card technology when the reader knows it; a line reader only passes text on."""


class ReaderError(Exception):
    """A reader problem; the message is one line a technician can act on."""


class ReaderUnavailable(ReaderError):
    """The port cannot be opened or was lost (missing, no permission, busy, unplugged)."""


class ReaderTimeout(ReaderError):
    """The reader did not answer in time."""


class ReaderProtocolError(ReaderError):
    """The reader answered, but not in a way the protocol allows."""


@dataclass(frozen=True, slots=True)
class Tap:
    """A card presented to a reader: its UID in upper-case hex, its technology, and when it was
    first seen (``time.monotonic()``, the clock the camera's frames use)."""

    uid: str
    kind: CardKind
    at: float


@dataclass(frozen=True, slots=True)
class Sighting:
    """One look at the field found this card."""

    uid: str
    kind: CardKind


def uid_hex(uid: bytes) -> str:
    """``uid`` as the MQTT contract carries it (4-10 bytes, upper-case hex); ValueError if the
    length is wrong."""
    if not 4 <= len(uid) <= 10:
        raise ValueError(f"a card UID has 4-10 bytes, got {len(uid)}")
    return uid.hex().upper()


class Debouncer:
    """Turns repeated sightings into one tap per presentation of a card."""

    def __init__(self, absent_polls: int) -> None:
        self._absent_polls = absent_polls
        self._absent = 0
        self.present: str | None = None

    def update(self, sighting: Sighting | None) -> bool:
        """Record one look; True when it shows a card that was not already present."""
        if sighting is None:
            if self.present is not None:
                self._absent += 1
                if self._absent >= self._absent_polls:
                    log.debug("card removed", extra={"uid": self.present})
                    self.present = None
            return False
        self._absent = 0
        if sighting.uid == self.present:
            return False
        self.present = sighting.uid
        return True


@dataclass
class ReaderStats:
    """What a reader reports about itself."""

    sightings: int = 0
    taps: int = 0
    failures: int = 0
    bad_frames: int = 0


class ReaderOptions(BaseModel):
    """Options every kind has; each kind adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    absent_polls: int = Field(
        default=3, ge=1, le=100, description="Empty looks in a row after which a card is removed."
    )
    max_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed looks in a row (timeouts, broken frames) before the reader is lost.",
    )


class StreamOptions(ReaderOptions):
    """Readers that send a frame or a line by themselves whenever a card is in the field."""

    window_s: float = Field(
        default=0.25,
        gt=0.0,
        le=10.0,
        description="One look waits this long for a frame; longer than the reader's repeat gap.",
    )


class CardReader(ABC):
    """A card reader on a serial port; use it as a context manager or call open/close."""

    kind: ClassVar[ReaderKind]
    options_model: ClassVar[type[ReaderOptions]] = ReaderOptions
    default_baudrate: ClassVar[int]
    registry: ClassVar[dict[str, type[CardReader]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            CardReader.registry[cls.kind] = cls

    def __init__(
        self, port: str, *, baudrate: int | None = None, options: ReaderOptions | None = None
    ) -> None:
        if options is not None and not isinstance(options, self.options_model):
            raise TypeError(f"a {self.kind} reader takes {self.options_model.__name__}")
        self.port = port
        self.baudrate = baudrate or self.default_baudrate
        self.options = options or self.options_model()
        self.stats = ReaderStats()
        self._serial: serial.Serial | None = None
        self._debouncer = Debouncer(self.options.absent_polls)
        self._failures_in_row = 0

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Open the port and bring the reader up; on failure nothing stays open."""
        self._serial = open_serial(self.port, self.baudrate)
        try:
            self._start()
        except BaseException:
            self._serial.close()
            self._serial = None
            raise

    def close(self) -> None:
        """Leave the reader idle and close the port; safe to call twice."""
        if self._serial is None:
            return
        try:
            self._stop()
        except ReaderError as exc:
            log.warning(
                "reader did not stop cleanly", extra={"port": self.port, "reason": str(exc)}
            )
        finally:
            self._serial.close()
            self._serial = None

    @property
    def is_open(self) -> bool:
        """Whether the port is open (a failed reader is closed until reopened)."""
        return self._serial is not None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def info(self) -> dict[str, str]:
        """What the reader says about itself (the PN532 adds its firmware version)."""
        return {"kind": self.kind, "port": self.port, "baudrate": str(self.baudrate)}

    # --- taps ------------------------------------------------------------------------------
    @property
    def present(self) -> str | None:
        """The UID of the card in the field now, as far as the debounce knows."""
        return self._debouncer.present

    def read_tap(self, timeout: float) -> Tap | None:
        """The next new tap within ``timeout`` seconds, else None.

        Transient faults (a timeout, a broken frame) are counted and the looking goes on; after
        ``max_failures`` in a row the reader is considered lost (:class:`ReaderUnavailable`).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                sighting = self._sight()
            except (ReaderTimeout, ReaderProtocolError) as exc:
                self._failed(exc)
            else:
                self._failures_in_row = 0
                if sighting is not None:
                    self.stats.sightings += 1
                if self._debouncer.update(sighting) and sighting is not None:
                    self.stats.taps += 1
                    return Tap(sighting.uid, sighting.kind, time.monotonic())
            if time.monotonic() >= deadline:
                return None
            self._pause(deadline)

    def _failed(self, exc: ReaderError) -> None:
        self.stats.failures += 1
        self._failures_in_row += 1
        if self._failures_in_row >= self.options.max_failures:
            raise ReaderUnavailable(
                f"{self.kind} on {self.port} failed {self._failures_in_row} times in a row: {exc}"
            ) from exc
        log.warning("card reader look failed", extra={"port": self.port, "reason": str(exc)})

    # --- what each kind implements ---------------------------------------------------------
    @abstractmethod
    def _sight(self) -> Sighting | None:
        """Look once for a card in the field, within a bounded time."""

    def _start(self) -> None:
        """Bring the reader up after the port opened; by default drop bytes sent before."""
        self._port().reset_input_buffer()

    def _stop(self) -> None:  # noqa: B027 - a hook: most readers need nothing
        """Leave the reader idle before the port closes."""

    def _pause(self, deadline: float) -> None:  # noqa: B027 - a hook: most readers need nothing
        """Wait between looks; readers whose look already waits need no pause."""

    # --- port access for subclasses --------------------------------------------------------
    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise ReaderError(f"the {self.kind} reader on {self.port} is not open")
        return self._serial

    def _read_some(self, timeout: float) -> bytes:
        """Bytes that arrive within ``timeout``, returning as soon as any do."""
        port = self._port()
        try:
            port.timeout = max(timeout, 0.0)
            first = port.read(1)
            return first + port.read(port.in_waiting) if first else b""
        except OSError as exc:  # pyserial's SerialException is one, as is a vanished device
            raise ReaderUnavailable(f"lost {self.port}: {exc}") from None

    def _write(self, data: bytes) -> None:
        try:
            self._port().write(data)
        except OSError as exc:
            raise ReaderUnavailable(f"lost {self.port}: {exc}") from None


class StreamReader(CardReader):
    """A reader that sends by itself while a card is in the field (RDM6300, line readers).

    One look waits up to ``window_s`` for a complete frame; none means the field is empty.
    """

    options_model: ClassVar[type[ReaderOptions]] = StreamOptions
    options: StreamOptions

    def _sight(self) -> Sighting | None:
        deadline = time.monotonic() + self.options.window_s
        while (remaining := deadline - time.monotonic()) > 0:
            found = self._decode(self._read_some(remaining))
            if found:
                return found[-1]
        return None

    @abstractmethod
    def _decode(self, data: bytes) -> list[Sighting]:
        """Sightings completed by ``data``; bad frames are counted in ``stats.bad_frames``."""


_OPEN_ERRORS = {
    errno.ENOENT: "no such port (is the reader plugged in?)",
    errno.EACCES: "permission denied (add the user to the 'dialout' group)",
    errno.EBUSY: "the port is busy",
    errno.EAGAIN: "another program is using the port",
    errno.ENOTTY: "not a serial port",
    errno.EISDIR: "not a serial port",
}


def open_serial(port: str, baudrate: int) -> serial.Serial:
    """Open ``port`` at ``baudrate`` 8N1, exclusively; :class:`ReaderUnavailable` names why not.

    Exclusive, because two programs reading one reader would each get half of its bytes.
    """
    try:
        return serial.Serial(port, baudrate, timeout=0, exclusive=True)
    except serial.SerialException as exc:
        reason = _OPEN_ERRORS.get(_errno(exc) or 0, str(exc))
        raise ReaderUnavailable(f"cannot open {port}: {reason}") from None
    except ValueError as exc:  # pyserial's answer to an impossible baud rate
        raise ReaderUnavailable(f"cannot open {port}: {exc}") from None


def _errno(exc: serial.SerialException) -> int | None:
    """The OS error behind ``exc``; pyserial drops it when configuring the port fails."""
    if exc.errno is not None:
        return exc.errno
    context = exc.__context__
    if isinstance(context, termios.error) and context.args and isinstance(context.args[0], int):
        return context.args[0]
    return None


class ReaderConfig(BaseModel):
    """Which reader a gate or ``gatectl`` uses, with the kind's own options checked at load."""

    model_config = ConfigDict(extra="forbid")

    kind: ReaderKind
    port: str = Field(min_length=1, description="Serial device, e.g. /dev/ttyUSB0 or /dev/serial0.")
    baudrate: int | None = Field(
        default=None, ge=1200, le=1_000_000, description="Default: the kind's usual rate."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="The kind's own options.")
    _options: ReaderOptions = PrivateAttr()

    @model_validator(mode="after")
    def _options_fit_the_kind(self) -> ReaderConfig:
        model = CardReader.registry[self.kind].options_model
        try:
            self._options = model.model_validate(self.options)
        except ValidationError as exc:
            problems = "; ".join(
                f"options.{'.'.join(str(p) for p in e['loc'])}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            raise ValueError(problems) from None
        return self

    def reader_options(self) -> ReaderOptions:
        """The options, validated for this kind."""
        return self._options


def make_reader(config: ReaderConfig) -> CardReader:
    """The (unopened) reader ``config`` describes."""
    reader = CardReader.registry[config.kind]
    return reader(config.port, baudrate=config.baudrate, options=config.reader_options())
