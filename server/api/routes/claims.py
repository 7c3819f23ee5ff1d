"""Claim tokens: a new gate started with only a token exchanges it, once, for its credential.

The technician issues the token (``gatectl device provision DEVICE --claim-token``) and puts it
on the gate, with the CA certificate and the server's address, instead of a secret. Issuing
sets the gate's new secret straight away, so the broker's password file can be rendered before
the gate first boots; the secret is kept only sealed under the token (AES-256-GCM with a key
derived from the token by HKDF), and the token only as its SHA-256. The exchange is
unauthenticated (the token is the credential), marks the token used and wipes the sealed secret
in the same conditional update, so of two gates racing with one token exactly one wins. An
unknown token is 401; a used or expired one 410 (Gone); neither changes anything.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import update
from sqlmodel import col, select

from broker.mosquitto_config import device_username
from broker.passwords import verify_password
from server import audit
from server.api import crud
from server.api.deps import IdPath, SessionDep, client_ip
from server.api.routes.devices import DeviceStaff, GalleryKeyDep, store_new_secret
from server.api.schemas.devices import (
    ClaimTokenCreate,
    ClaimTokenIssued,
    DeviceClaim,
    DeviceCredential,
)
from server.api.security import token_hash
from server.auth_models import DeviceClaimToken, DeviceSecret
from server.models import Device, Site, utc_now

router = APIRouter(prefix="/devices", tags=["devices"])

CLAIM_TOKEN_PREFIX = "cgc_"
"""Makes a leaked claim token easy to tell from an API token (``cg_``) in logs and scanners."""
_SEAL_INFO = b"campusgate device-claim seal v1"
_NONCE_BYTES = 12

UNKNOWN = "unknown claim token / mã nhận thiết bị không hợp lệ"
USED = "claim token already used / mã nhận thiết bị đã được dùng"
EXPIRED = "claim token expired / mã nhận thiết bị đã hết hạn"
SUPERSEDED = (
    "claim token replaced by a newer credential / mã nhận thiết bị đã bị thay bằng thông tin mới"
)
DISABLED = "the device is disabled / thiết bị đang bị khóa"


def _cipher(token: str) -> AESGCM:
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(token.encode())
    return AESGCM(key)


def seal(token: str, secret: str, device_id: int) -> str:
    """``secret`` encrypted under a key only ``token`` gives, bound to the device's id."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(token).encrypt(nonce, secret.encode(), str(device_id).encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(token: str, sealed: str, device_id: int) -> str:
    """The secret :func:`seal` sealed; :class:`cryptography.exceptions.InvalidTag` if the
    token, the device or the text is not the one it was sealed with."""
    raw = base64.urlsafe_b64decode(sealed)
    nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
    return _cipher(token).decrypt(nonce, body, str(device_id).encode()).decode()


@router.post("/{device_id}/claim-tokens", status_code=status.HTTP_201_CREATED)
def issue_claim_token(
    device_id: IdPath, body: ClaimTokenCreate, staff: DeviceStaff, db: SessionDep
) -> ClaimTokenIssued:
    """A one-time token the gate exchanges at ``POST /devices/claim`` for its credential.

    The gate gets a new secret now (its old one, and any earlier unused token, stop working):
    render the broker's password file after this, so the secret works there once claimed."""
    device = crud.get_or_404(db, Device, device_id, "device")
    if not device.enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, DISABLED)
    site = db.get(Site, device.site_id)
    assert site is not None
    secret = store_new_secret(db, device)
    token = CLAIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = DeviceClaimToken(
        device_id=device.id,
        token_hash=token_hash(token),
        sealed_secret=seal(token, secret, device.id),
        created_by=staff.id,
        expires_at=utc_now() + timedelta(seconds=body.ttl_s),
    )
    db.add(row)
    db.commit()
    return ClaimTokenIssued(
        token=token,
        expires_at=row.expires_at,
        site=site.code,
        device=device.device_id,
        username=device_username(site.code, device.device_id),
    )


@router.post("/claim")
def claim_device(
    body: DeviceClaim, db: SessionDep, key: GalleryKeyDep, request: Request
) -> DeviceCredential:
    """Exchange a claim token for the gate's credential and the server's gallery key; works
    once, before the token expires."""
    now = utc_now()
    found = db.exec(
        select(DeviceClaimToken, Device, Site.code)
        .join(Device, col(Device.id) == DeviceClaimToken.device_id)
        .join(Site, col(Site.id) == Device.site_id)
        .where(DeviceClaimToken.token_hash == token_hash(body.token))
    ).first()
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, UNKNOWN)
    claim, device, site = found
    if claim.used_at is not None or claim.sealed_secret is None:
        raise HTTPException(status.HTTP_410_GONE, USED)
    if claim.expires_at <= now:
        raise HTTPException(status.HTTP_410_GONE, EXPIRED)
    if not device.enabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, DISABLED)
    stored = db.get(DeviceSecret, device.id)
    try:
        secret = unseal(body.token, claim.sealed_secret, device.id)
    except (InvalidTag, ValueError):
        secret = ""
    if stored is None or not secret or not verify_password(secret, stored.secret_hash):
        raise HTTPException(status.HTTP_410_GONE, SUPERSEDED)
    taken = db.exec(
        update(DeviceClaimToken)
        .where(col(DeviceClaimToken.id) == claim.id, col(DeviceClaimToken.used_at).is_(None))
        .values(used_at=now, sealed_secret=None)
    )
    if taken.rowcount != 1:  # another request with the same token won the race
        db.rollback()
        raise HTTPException(status.HTTP_410_GONE, USED)
    audit.record(
        db,
        actor_id=None,
        action="device.claim",
        entity="device",
        entity_id=device.id,
        ip=client_ip(request),
    )
    db.commit()
    return DeviceCredential(
        site=site,
        device=device.device_id,
        username=device_username(site, device.device_id),
        password=secret,
        gallery_public_key=key.public_pem().decode(),
    )
