"""Gates: list and status for admins and technicians, registration, changes, removal, and the
gate's secret.

A gate has one secret for the broker and for the API's gate-facing endpoints (HTTP Basic as
``{site}.{device}``). It is stored as Mosquitto's ``$7$`` PBKDF2-SHA512 hash
(:mod:`broker.passwords`), so the broker's password file can be written from the same table and
a rotation here changes both at once; the secret is 256 random bits, so the hash's cost need not
be high, and the broker pays it on every connect.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel import Session, col, select

from broker import passwords
from broker.mosquitto_config import device_username
from server.api import crud
from server.api.deps import DeviceDep, IdPath, SessionDep, not_found, require_roles
from server.api.schemas.common import MAX_ID
from server.api.schemas.devices import (
    DeviceCreate,
    DevicePublic,
    DeviceSecretIssued,
    DeviceUpdate,
)
from server.auth_models import DeviceSecret
from server.models import Device, Role, Site, User, utc_now

router = APIRouter(prefix="/devices", tags=["devices"])
DeviceStaff = Annotated[User, Depends(require_roles(Role.ADMIN, Role.TECHNICIAN))]
DUPLICATE = "the site has a device with this id / thiết bị đã có ở cơ sở này"


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
def register_device(body: DeviceCreate, _staff: DeviceStaff, db: SessionDep) -> DevicePublic:
    """Register a gate; its broker username defaults to ``{site}.{device}``."""
    site = crud.get_or_404(db, Site, body.site_id, "site")
    device = Device(**body.model_dump())
    device.credential_id = device.credential_id or device_username(site.code, device.device_id)
    crud.store(db, device, DUPLICATE)
    db.commit()
    return _one(db, device.id)


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


@router.put("/{device_id}/secret")
def rotate_secret(device_id: IdPath, _staff: DeviceStaff, db: SessionDep) -> DeviceSecretIssued:
    """Set a new random secret for the gate (the old one stops working at once) and show it
    once. Put it on the gate, and in the broker's password file."""
    device = crud.get_or_404(db, Device, device_id, "device")
    site = db.get(Site, device.site_id)
    assert site is not None
    secret = passwords.new_password()
    row = db.get(DeviceSecret, device.id) or DeviceSecret(device_id=device.id, secret_hash="")
    row.secret_hash = passwords.hash_password(secret)
    row.rotated_at = utc_now()
    db.add(row)
    db.commit()
    return DeviceSecretIssued(
        username=device_username(site.code, device.device_id), password=secret
    )
