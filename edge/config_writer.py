"""Writing a gate's TOML file: ``gatectl``'s provisioning bundles, and the credential a claim
brings (:mod:`edge.claim`).

The gate reads its file with :mod:`tomllib`, which cannot write. What a gate's file holds is
small: tables of text, numbers, booleans and lists of numbers, and sub-tables (a reader's
``options``), which is all this writes; anything else is a :class:`ValueError`, never a file
the gate would misread. The file may hold a secret, so it is written owner-only, in one step.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(config: Mapping[str, Mapping[str, Any]]) -> str:
    """``config`` (table name → its keys) as TOML text that :func:`tomllib.loads` reads back
    equal; keys whose value is None are left out."""
    chunks = [_table(name, table) for name, table in config.items()]
    return "\n".join(chunk for chunk in chunks if chunk)


def write_config(path: Path, config: Mapping[str, Mapping[str, Any]]) -> None:
    """Write :func:`dumps` of ``config`` to ``path`` (mode 0600), replacing it atomically."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(dumps(config))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _table(name: str, table: Mapping[str, Any]) -> str:
    lines, subtables = [f"[{name}]"], []
    for key, value in table.items():
        if not _BARE_KEY.match(key):
            raise ValueError(f"{name}.{key}: not a plain TOML key")
        if value is None:
            continue
        if isinstance(value, Mapping):
            subtables.append(_table(f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {_value(value, f'{name}.{key}')}")
    return "\n".join([*lines, ""]) + "".join("\n" + sub for sub in subtables)


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} has no place in a gate's file")
        return repr(value)
    if isinstance(value, str | Path):
        return _string(str(value))
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(item, where) for item in value) + "]"
    raise ValueError(f"{where}: cannot write a {type(value).__name__}")


def _string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
