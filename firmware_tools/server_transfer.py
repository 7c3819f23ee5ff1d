"""Files to and from the school server: photo uploads (multipart) and backup downloads
(streamed), with the same token, CA and error messages as :class:`ServerApi`'s JSON calls.

Uploads send the files as they are; a download is written to ``FILE.partial`` and renamed only
once complete, so an interrupted transfer never leaves a file that looks like a backup.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from edge.claim import server_message
from firmware_tools.server_api import ApiError, ServerApi

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes if the server said)."""


def _client(api: ServerApi) -> httpx.Client:
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(api.ca_file)) if api.ca_file else True
    )
    return httpx.Client(
        headers={"Authorization": f"Bearer {api.token}"}, verify=verify, timeout=api.timeout_s
    )


def _refused(method: str, path: str, response: httpx.Response) -> ApiError:
    return ApiError(
        f"{method} {path}: {response.status_code} {server_message(response)}",
        response.status_code,
    )


def upload(
    api: ServerApi,
    path: str,
    files: Sequence[tuple[str, tuple[str, bytes, str]]],
    fields: dict[str, str],
) -> tuple[int, Any]:
    """POST a multipart form; the status and the JSON answer, refusals (4xx with a JSON
    ``detail``) included, so the caller can show why. :class:`ApiError` for anything else."""
    try:
        with _client(api) as client:
            response = client.post(api.base_url + path, files=list(files), data=fields)
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach the server at {api.base_url}: {exc}") from None
    if response.status_code >= 500 or response.status_code in (401, 403, 404, 413, 415):
        raise _refused("POST", path, response)
    try:
        return response.status_code, response.json()
    except ValueError:
        raise _refused("POST", path, response) from None


def download(api: ServerApi, path: str, out: Path, progress: Progress) -> str:
    """POST ``path`` and stream the answer into ``out``; returns the file's sha256 (hex)."""
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    try:
        with _client(api) as client, client.stream("POST", api.base_url + path) as response:
            if response.status_code >= 400:
                response.read()
                raise _refused("POST", path, response)
            total = response.headers.get("content-length")
            done = 0
            with partial.open("wb") as file:
                for chunk in response.iter_bytes(1 << 20):
                    file.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(done, int(total) if total else None)
        partial.replace(out)
    except httpx.HTTPError as exc:
        raise ApiError(f"the transfer from {api.base_url} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()
