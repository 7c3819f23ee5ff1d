"""Mosquitto password-file entries in Mosquitto's own ``$7$`` format (PBKDF2-SHA512).

Written here rather than by shelling out to ``mosquitto_passwd`` so that the server and
``gatectl`` can manage credentials on a machine where the broker runs elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

# Device and service passwords are 256-bit random tokens, so brute force is hopeless whatever the
# count; the count only has to stay cheap for the broker, which pays it on every connect.
ITERATIONS = 1000
_SALT_BYTES = 12


def new_password() -> str:
    """A random credential for a device or service account (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    """The ``$7$iterations$salt$hash`` string Mosquitto 2 checks a password against."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches an entry made by :func:`hash_password` or mosquitto_passwd."""
    try:
        _, scheme, iterations, salt, digest = encoded.split("$")
        if scheme != "7":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt, validate=True), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


def read_password_file(path: Path) -> dict[str, str]:
    """The ``username -> hash`` entries of a password file; FileNotFoundError if it is absent."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        username, sep, hashed = line.partition(":")
        if sep and username:
            entries[username] = hashed
    return entries


def write_password_file(path: Path, hashed: Mapping[str, str]) -> None:
    """Write ``username:hash`` lines (owner-only permissions), replacing the file atomically."""
    for username in hashed:
        if not username or any(c in username for c in ":\n\r"):
            raise ValueError(f"username {username!r} cannot be stored in a password file")
    tmp = path.with_name(path.name + ".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("".join(f"{user}:{hashed[user]}\n" for user in sorted(hashed)))
    tmp.replace(path)
