"""Gates: list and status for admins and technicians, registration, changes, removal, the
gate's secret, revocation, and what ``gatectl`` needs to render the broker and provision gates.

A gate has one secret for the broker and for the API's gate-facing endpoints (HTTP Basic as
``{site}.{device}``). It is stored as Mosquitto's ``$7$`` PBKDF2-SHA512 hash
(:mod:`broker.passwords`), so the broker's password file can be written from the same table and
a rotation here changes both at once; the secret is 256 random bits, so the hash's cost need not
be high, and the broker pays it on every connect.

Revoking a gate disables it and deletes its secret and pending claim tokens in one transaction:
the API refuses it at once, and the broker does as soon as its password file is rendered again
from ``/devices/broker-accounts`` and reloaded (``gatectl device revoke --broker-dir``), which
also disconnects the gate if it is connected.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import delete
from sqlmodel import Session, col, select

from broker import passwords
from broker.mosquitto_config import device_username
from server import audit
from server.api import crud
from server.api.deps import DeviceDep, IdPath, SessionDep, not_found, require_roles
from server.api.schemas.common import MAX_ID
from server.api.schemas.devices import (
    BrokerAccount,
    DeviceCreate,
    DevicePublic,
    DeviceRegister,
    DeviceSecretIssued,
    DeviceUpdate,
    GalleryKeyPublic,
)
from server.auth_models import DeviceClaimToken, DeviceSecret
from server.core.config import get_settings
from server.gallery_key import GalleryKey, load_or_create_key
from server.models import Device, DeviceStatus, Role, Site, User, utc_now

router = APIRouter(prefix="/devices", tags=["devices"])
DeviceStaff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.TECHNICIAN))]
DUPLICATE = "the site has a device with this id / thiết bị đã có ở cơ sở này"


def gallery_key() -> GalleryKey:
    """The server's gallery signing key (made on first use in the data directory); tests
    override this dependency with a key of their own."""
    return load_or_create_key(get_settings().data_dir)


GalleryKeyDep = Annotated[GalleryKey, Depends(gallery_key)]


def _public(db: Session, where: object | None = None) -> list[DevicePublic]:
    statement = (
        select(Device, Site.code, col(DeviceSecret.device_id).is_not(None))
        .join(Site, col(Site.id) == Device.site_id)
        .outerjoin(DeviceSecret, col(DeviceSecret.device_id) == Device.id)
        .order_by(col(Site.code), col(Device.device_id))
    )
    if where is not None:
        statement = statement.where(where)
    return [
        DevicePublic(**device.model_dump(), site=site, has_secret=has_secret)
        for device, site, has_secret in db.exec(statement)
    ]


def _one(db: Session, device_id: int) -> DevicePublic:
    found = _public(db, col(Device.id) == device_id)
    if not found:
        raise not_found("device", device_id)
    return found[0]


@router.get("")
def list_devices(
    _staff: DeviceStaff,
    db: SessionDep,
    site_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> list[DevicePublic]:
    """Every gate with its last reported status, versions and telemetry."""
    return _public(db, col(Device.site_id) == site_id if site_id is not None else None)


@router.get("/self")
def this_device(device: DeviceDep, db: SessionDep) -> DevicePublic:
    """The calling gate itself (HTTP Basic): lets a gate or gatectl check its credential."""
    return _one(db, device.id)


@router.post("", status_code=status.HTTP_201_CREATED)
def register_device(body: DeviceRegister, _staff: DeviceStaff, db: SessionDep) -> DevicePublic:
    """Register a gate at its site (``site_id``, or ``site`` by code); its broker username
    defaults to ``{site}.{device}``."""
    if body.site is not None:
        site = db.exec(select(Site).where(Site.code == body.site)).first()
        if site is None:
            raise not_found("site", body.site)
    else:
        site = crud.get_or_404(db, Site, body.site_id, "site")
    device = Device(**body.model_dump(exclude={"site", "site_id"}), site_id=site.id)
    device.credential_id = device.credential_id or device_username(site.code, device.device_id)
    crud.store(db, device, DUPLICATE)
    db.commit()
    return _one(db, device.id)


@router.get("/broker-accounts")
def broker_accounts(_staff: DeviceStaff, db: SessionDep) -> list[BrokerAccount]:
    """The broker's device accounts: every enabled gate with a secret, with the secret's
    ``$7$`` hash, for ``gatectl broker render``. The hashes are of 256-bit random secrets, so
    they give nothing away; a disabled or revoked gate is not listed, so it loses the broker."""
    rows = db.exec(
        select(Site.code, Device.device_id, DeviceSecret.secret_hash)
        .join(Site, col(Site.id) == Device.site_id)
        .join(DeviceSecret, col(DeviceSecret.device_id) == Device.id)
        .where(col(Device.enabled).is_(True))
        .order_by(col(Site.code), col(Device.device_id))
    )
    return [
        BrokerAccount(
            site=site,
            device=device,
            username=device_username(site, device),
            password_hash=secret_hash,
        )
        for site, device, secret_hash in rows
    ]


@router.get("/gallery-key")
def gallery_public_key(_staff: DeviceStaff, key: GalleryKeyDep) -> GalleryKeyPublic:
    """The server's gallery public key, for a gate's provisioning bundle."""
    return GalleryKeyPublic(key_id=key.key_id, public_key=key.public_pem().decode())


@router.get("/{device_id}")
def get_device(device_id: IdPath, _staff: DeviceStaff, db: SessionDep) -> DevicePublic:
    return _one(db, device_id)


@router.patch("/{device_id}")
def update_device(
    device_id: IdPath, body: DeviceUpdate, _staff: DeviceStaff, db: SessionDep
) -> DevicePublic:
    """Rename, turn around (direction), enable or disable a gate."""
    device = crud.get_or_404(db, Device, device_id, "device")
    crud.patch(db, device, DeviceCreate, body, DUPLICATE)
    db.commit()
    return _one(db, device_id)


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_device(device_id: IdPath, _staff: DeviceStaff, db: SessionDep) -> None:
    """Remove a gate with its secret and its stored events."""
    db.delete(crud.get_or_404(db, Device, device_id, "device"))
    db.commit()


def store_new_secret(db: Session, device: Device) -> str:
    """Give ``device`` a new random secret (uncommitted) and return it. Unused claim tokens of
    the device are dropped: they were made for the secret this one replaces."""
    secret = passwords.new_password()
    row = db.get(DeviceSecret, device.id) or DeviceSecret(device_id=device.id, secret_hash="")
    row.secret_hash = passwords.hash_password(secret)
    row.rotated_at = utc_now()
    db.add(row)
    db.exec(
        delete(DeviceClaimToken).where(
            col(DeviceClaimToken.device_id) == device.id, col(DeviceClaimToken.used_at).is_(None)
        )
    )
    return secret


@router.put("/{device_id}/secret")
def rotate_secret(device_id: IdPath, _staff: DeviceStaff, db: SessionDep) -> DeviceSecretIssued:
    """Set a new random secret for the gate (the old one stops working at once) and show it
    once. Put it on the gate, and in the broker's password file (``gatectl broker sync``)."""
    device = crud.get_or_404(db, Device, device_id, "device")
    site = db.get(Site, device.site_id)
    assert site is not None
    secret = store_new_secret(db, device)
    db.commit()
    return DeviceSecretIssued(
        username=device_username(site.code, device.device_id), password=secret
    )


@router.post("/{device_id}/revoke")
def revoke_device(device_id: IdPath, staff: DeviceStaff, db: SessionDep) -> DevicePublic:
    """Cut a gate off: disable it and delete its secret and pending claim tokens, at once for
    the API. Render the broker's password file again and reload it to cut it off there too
    (``gatectl device revoke`` does both). Registering it again takes enabling it and a new
    secret or claim token."""
    device = crud.get_or_404(db, Device, device_id, "device")
    device.enabled = False
    device.status = DeviceStatus.OFFLINE
    db.add(device)
    db.exec(delete(DeviceSecret).where(col(DeviceSecret.device_id) == device.id))
    db.exec(delete(DeviceClaimToken).where(col(DeviceClaimToken.device_id) == device.id))
    audit.record(
        db, actor_id=staff.id, action="device.revoke", entity="device", entity_id=device.id
    )
    db.commit()
    return _one(db, device_id)
