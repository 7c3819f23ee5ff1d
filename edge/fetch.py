"""Downloads from the school's server with the gate's own credential (gallery files)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import httpx

Fetch = Callable[[str, int], bytes]
"""``fetch(url, max_bytes)``: the file at ``url``, refusing more than ``max_bytes``."""


def https_fetcher(
    username: str,
    password: str | None,
    ca_file: Path | None,
    client_cert: tuple[Path, Path] | None = None,
    timeout_s: float = 30.0,
) -> Fetch:
    """A fetch function that authenticates as the device and stops reading past ``max_bytes``."""
    tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if client_cert is not None:
        tls.load_cert_chain(client_cert[0], client_cert[1])
    auth = httpx.BasicAuth(username, password) if password else None

    def fetch(url: str, max_bytes: int) -> bytes:
        chunks, size = [], 0
        with (
            httpx.Client(verify=tls, auth=auth, timeout=timeout_s) as client,
            client.stream("GET", url) as response,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError(f"more than the announced {max_bytes} bytes")
                chunks.append(chunk)
        return b"".join(chunks)

    return fetch
