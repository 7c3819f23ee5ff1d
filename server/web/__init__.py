"""The web pages people use (teachers, parents, admins), served by the server itself:
Jinja2 templates and small scripts that call the JSON API, no build step. See :func:`install`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server.web.routes import web_router
from server.web.templating import STATIC_DIR


def install(app: FastAPI) -> None:
    """Mount the pages and their static files on ``app``."""
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
