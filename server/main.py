"""The server's web application (FastAPI), served by ``campusgate server run``.

The REST API (``/api/v1``, :mod:`server.api`) and the health check live here; the dashboard is
mounted on this app as a router too (``app.include_router(...)``).
"""

from __future__ import annotations

from importlib.metadata import version

from fastapi import FastAPI

from server import web
from server.api import errors
from server.api.router import API_PREFIX, api_router
from server.notify import opt_out_routes
from server.web.roll_watch import lifespan

app = FastAPI(title="campusgate server", version=version("campusgate"), lifespan=lifespan)
errors.install(app)
app.include_router(api_router, prefix=API_PREFIX)
app.include_router(opt_out_routes.router)
web.install(app)


@app.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok"}
