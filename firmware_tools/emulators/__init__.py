"""Card readers emulated on the far end of a real pseudo-terminal, speaking their byte protocols.

Tests and ``gatectl reader emulate`` start one, hand its ``path`` to a driver (pyserial opens it
like any serial port), and place or remove cards; the driver cannot tell it from a reader on a
USB adapter, which is the point: drivers are tested through the same bytes, never a mock.
"""

from firmware_tools.emulators.line import LineEmulator
from firmware_tools.emulators.pn532 import EmulatedCard, Fault, PN532Emulator
from firmware_tools.emulators.pty_pair import PtyEmulator, PtyPair
from firmware_tools.emulators.rdm6300 import RDM6300Emulator

__all__ = [
    "EmulatedCard",
    "Fault",
    "LineEmulator",
    "PN532Emulator",
    "PtyEmulator",
    "PtyPair",
    "RDM6300Emulator",
]
