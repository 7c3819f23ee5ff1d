"""Every router of the API, mounted under :data:`API_PREFIX` by :mod:`server.main`."""

from fastapi import APIRouter

from server.api.routes import (
    attendance,
    audit,
    auth,
    backup,
    cards,
    claims,
    classes,
    devices,
    enrollment,
    gallery,
    guardians,
    notifications,
    reports,
    schools,
    students,
    users,
)

API_PREFIX = "/api/v1"
api_router = APIRouter()
for module in (
    auth,
    users,
    schools,
    classes,
    students,
    guardians,
    cards,
    devices,
    claims,
    attendance,
    reports,
    enrollment,
    gallery,
    notifications,
    audit,
    backup,
):
    api_router.include_router(module.router)
