"""Every router of the web pages, gathered for :func:`server.web.install`."""

from fastapi import APIRouter

from server.web.routes import admin, common, parent, teacher

web_router = APIRouter(include_in_schema=False)
for module in (common, teacher, parent, admin):
    web_router.include_router(module.router)
