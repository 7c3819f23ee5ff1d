"""Secrets of the API: users' passwords (argon2), session and API tokens, CSRF tokens.

One place for every hash so that a route never picks its own: passwords people choose get
argon2id (slow on purpose); tokens the server generates carry 256 bits and get SHA-256 (fast is
fine, nothing to guess).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_TOKEN_PREFIX = "cg_"
_hasher = PasswordHasher()
# Checked when the username is unknown, so a failed login costs the same time either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with the library's current parameters."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and a fresh hash to store when the stored one was made
    with older parameters (None otherwise). A missing hash never matches."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    return True, hash_password(password) if _hasher.check_needs_rehash(password_hash) else None


def new_token() -> str:
    """A random session token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    """A random API token; the prefix makes a leaked one easy to recognise in logs and scanners."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database stores for a session or API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a web session, derived from its cookie token: a page on another site
    cannot read the HttpOnly cookie, so it cannot compute this, and nothing extra is stored."""
    digest = hmac.new(session_token.encode(), b"campusgate-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(given.encode(), expected.encode())
