"""Tables of the API's authentication: web sessions, API tokens, failed logins, device secrets.

Kept apart from :mod:`server.models` (the school's data) because they are credentials, not
records: no secret is stored in the clear. Session and API tokens are 256-bit random strings, so a
plain SHA-256 of them is enough to make a stolen table useless (a slow hash protects only guessable
secrets); device secrets use Mosquitto's ``$7$`` PBKDF2 hash so the broker's password file and the
server check the same credential.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from server.models import utc_now
from server.sqltypes import UtcDateTime


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="user_account.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(sa_type=UtcDateTime, default_factory=utc_now)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    ip: str | None = Field(default=None, max_length=45)
    user_agent: str | None = Field(default=None, max_length=255)


class ApiToken(SQLModel, table=True):
    """A bearer token for scripts, shown once at creation; ``prefix`` lets its owner tell tokens
    apart in a list without the table holding the token."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    name: str = Field(max_length=100)
    user_id: int = Field(foreign_key="user_account.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(sa_type=UtcDateTime, default_factory=utc_now)
    expires_at: datetime | None = Field(sa_type=UtcDateTime, default=None)
    revoked_at: datetime | None = Field(sa_type=UtcDateTime, default=None)


class LoginFailure(SQLModel, table=True):
    """One failed login, kept for the rate-limit window; in the database so that every worker
    process counts the same failures."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_username_ip_at", "username", "ip", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    ip: str = Field(max_length=45)
    at: datetime = Field(sa_type=UtcDateTime, default_factory=utc_now)


class DeviceSecret(SQLModel, table=True):
    """A gate's password (``$7$`` PBKDF2-SHA512, as in Mosquitto's password file), checked by
    the API for gate-facing endpoints under the username ``{site}.{device}``."""

    __tablename__ = "device_secret"

    device_id: int = Field(foreign_key="device.id", ondelete="CASCADE", primary_key=True)
    secret_hash: str = Field(max_length=255)
    rotated_at: datetime = Field(sa_type=UtcDateTime, default_factory=utc_now)


class DeviceClaimToken(SQLModel, table=True):
    """A one-time, expiring token a new gate exchanges for its own credential (fleet
    provisioning by claim).

    Issuing one sets the gate's new secret at once, so the broker's password file can be
    rendered before the gate ever boots; the secret itself is kept only sealed under the token
    (AES-GCM, key derived from the token), which the table does not hold: ``token_hash`` is its
    SHA-256, like :class:`ApiToken`. The exchange marks the row used and wipes the sealed secret,
    so a used token opens nothing even with the database in hand.
    """

    __tablename__ = "device_claim_token"

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    sealed_secret: str | None = Field(default=None, max_length=255)
    created_by: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL", index=True
    )
    created_at: datetime = Field(sa_type=UtcDateTime, default_factory=utc_now)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    used_at: datetime | None = Field(sa_type=UtcDateTime, default=None)
