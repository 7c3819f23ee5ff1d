"""Card readers (PN532, RDM6300, line readers) and card + face fusion.

Importing the package registers every reader kind, so a :class:`ReaderConfig` can name any.
"""

from edge.cards.line_reader import LineReader
from edge.cards.pn532 import PN532
from edge.cards.rdm6300 import RDM6300
from edge.cards.reader import CardReader, ReaderConfig, ReaderError, Tap, make_reader

__all__ = [
    "PN532",
    "RDM6300",
    "CardReader",
    "LineReader",
    "ReaderConfig",
    "ReaderError",
    "Tap",
    "make_reader",
]
