"""Guardians (parents): an admin keeps their contact details and their sign-in account
(``user_id``); links to students are under ``/students/{id}/guardians``."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import AdminUser
from server.api.resource import add_crud_routes
from server.api.schemas.people import GuardianCreate, GuardianPublic, GuardianUpdate
from server.models import Guardian

router = APIRouter(tags=["guardians"])

add_crud_routes(
    router,
    model=Guardian,
    create=GuardianCreate,
    update=GuardianUpdate,
    public=GuardianPublic,
    path="/guardians",
    duplicate="this account already belongs to a guardian / tài khoản đã gắn với phụ huynh khác",
    reader=AdminUser,
)
