"""Structured, greppable logs for every campusgate service.

One line per record: ``time level logger message key=value …``, where the keys come from the
``extra`` mapping a module passes to its logger. Services never configure logging themselves;
the entry point calls :func:`setup_logging` once.
"""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class KeyValueFormatter(logging.Formatter):
    """Format a record as one line with its extra fields as ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [
            ts.replace("+00:00", "Z"),
            record.levelname.lower(),
            record.name,
            _quote(record.getMessage()),
        ]
        parts += [
            f"{key}={_quote(str(value))}"
            for key, value in vars(record).items()
            if key not in _STANDARD
        ]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' "=\n'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_QUIET = (
    "amqtt",  # narrates every packet at info level
    "transitions",
    "alembic.runtime.plugins",  # announces each autogenerate plugin at import
)


def logging_dict(level: str = "info") -> dict[str, Any]:
    """Every logger's records to stderr in the key=value format at ``level``, as a
    :mod:`logging.config` dictionary: also what a process started by a library is configured
    from (uvicorn's web workers)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kv": {"()": KeyValueFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "kv",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"level": "WARNING"} for name in _QUIET},
    }


def setup_logging(level: str = "info") -> None:
    """Send every logger's records to stderr in the key=value format at ``level``."""
    logging.config.dictConfig(logging_dict(level))
