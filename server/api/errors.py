"""Error answers the whole API shares, so that what the database refuses is never a 500: a
constraint clash is a conflict (409) even where a route's own checks missed a race, and a value
the database cannot store (a NUL character in a text on PostgreSQL) is a 422."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError

log = logging.getLogger(__name__)


def _refused(code: int, detail: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        # The driver's own first line only: the full message lists the statement's values,
        # which may be a student's personal data.
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        log.info("refused by the database", extra={"path": request.url.path, "reason": reason})
        return JSONResponse({"detail": detail}, status_code=code)

    return handler


def install(app: FastAPI) -> None:
    """Register the shared error handlers on ``app``."""
    app.add_exception_handler(
        IntegrityError,
        _refused(
            status.HTTP_409_CONFLICT,
            "conflicts with existing data / trùng hoặc xung đột với dữ liệu đã có",
        ),
    )
    app.add_exception_handler(
        DataError,
        _refused(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "a value cannot be stored (e.g. a NUL character) / giá trị không hợp lệ",
        ),
    )
