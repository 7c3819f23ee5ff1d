"""Reading photo uploads (``multipart/form-data``) into memory, within limits, never onto disk.

Starlette's own form parsing spools any file over 1 MB to a temporary file; face photos are
biometric data that campusgate never stores, so here every part stays in memory and the whole
body is capped (the photos' limits plus room for the text fields), so an upload can neither
reach the disk nor fill the memory. The client's file names are not used at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import HTTPException, Request, status
from starlette.formparsers import MultiPartException, MultiPartParser

MAX_TEXT_FIELDS = 16
MAX_TEXT_BYTES = 4096


class _InMemoryParser(MultiPartParser):
    spool_max_size = 2**62  # a file part never rolls over from memory to a temporary file


@dataclass(frozen=True)
class Upload:
    """The text fields (the last value of each name) and the files' bytes, by field name."""

    fields: dict[str, str]
    files: dict[str, list[bytes]]


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"upload over {limit // 2**20} MB / tải lên quá {limit // 2**20} MB",
    )


async def _capped(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


async def read_upload(request: Request, *, max_files: int, max_file_bytes: int) -> Upload:
    """The form of ``request``: up to ``max_files`` files, each read up to one byte past
    ``max_file_bytes`` (so the caller can tell it is too large), and a few short text fields.
    413 past the body's cap or the number of files, 415 if not multipart, 400 if malformed."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data / hãy gửi dạng multipart/form-data",
        )
    limit = max_files * max_file_bytes + MAX_TEXT_FIELDS * MAX_TEXT_BYTES + 2**20
    parser = _InMemoryParser(
        request.headers,
        _capped(request.stream(), limit),
        max_files=max_files,
        max_fields=MAX_TEXT_FIELDS,
        max_part_size=MAX_TEXT_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        too_many = "Too many files" in str(exc)
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE if too_many else status.HTTP_400_BAD_REQUEST,
            f"{exc} / biểu mẫu tải lên không hợp lệ",
        ) from None
    fields: dict[str, str] = {}
    files: dict[str, list[bytes]] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields[name] = value
            else:
                files.setdefault(name, []).append(await value.read(max_file_bytes + 1))
    finally:
        await form.close()
    return Upload(fields, files)
