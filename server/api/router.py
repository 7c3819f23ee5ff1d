"""Every router of the API, mounted under :data:`API_PREFIX` by :mod:`server.main`."""

from fastapi import APIRouter

from server.api.routes import (
    attendance,
    auth,
    cards,
    classes,
    devices,
    enrollment,
    gallery,
    guardians,
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
    attendance,
    reports,
    enrollment,
    gallery,
):
    api_router.include_router(module.router)
