"""The errors a CCCD read can end in, under one base class so callers catch one thing.

Each message says what went wrong in words a technician at a gate can act on; none of them is
raised for a condition the reader could silently work around.
"""

from __future__ import annotations


class CccdError(Exception):
    """Base of every error raised while reading or checking a CCCD / eMRTD chip."""


class MrzError(CccdError, ValueError):
    """MRZ data (typed key or DG1 text) that is not well formed."""


class LdsError(CccdError, ValueError):
    """A file from the chip (TLV structure, data group) that cannot be parsed."""


class SodError(LdsError):
    """The document security object (EF.SOD) is malformed or its signature cannot be checked."""


class QrError(CccdError, ValueError):
    """The printed CCCD QR text does not have the expected fields."""


class CscaError(CccdError, ValueError):
    """A configured CSCA file that is not a readable certificate."""


class SecureMessagingError(CccdError):
    """A secure-messaging response failed our checks (MAC, structure, padding).

    The session is unusable afterwards: both sides' send sequence counters may now differ.
    """


class AccessDenied(CccdError):
    """The card refused mutual authentication: the MRZ key does not open it."""


class CardError(CccdError):
    """The card answered a command with an error status word."""

    def __init__(self, message: str, sw: int) -> None:
        super().__init__(message)
        self.sw = sw


class FileNotFound(CardError):
    """SW 6A82: the selected application or file does not exist on this card."""


class SecurityStatusNotSatisfied(CardError):
    """SW 6982: the file needs an access right the session does not have."""


class SecureMessagingRejected(CardError):
    """SW 6987/6988: the card rejected our secure messaging and closed the session."""
