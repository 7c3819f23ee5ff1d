"""The school server's REST API as ``gatectl`` uses it: a technician's bearer token, and every
failure as one :class:`ApiError` whose message a technician can act on.

A technician gets the token once from ``POST /api/v1/auth/tokens`` (signed in as a user with the
technician or admin role) and passes it with ``--token`` or ``$CAMPUSGATE_TOKEN``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edge.claim import server_message

API_PREFIX = "/api/v1"


class ApiError(RuntimeError):
    """The server refused (``status`` is its HTTP status) or could not be reached (None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_base(url: str) -> str:
    """The API's base URL from the server's address, with or without ``/api/v1``."""
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http:// or https:// address")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


@dataclass(frozen=True)
class ServerApi:
    """Calls to one server as one technician. ``ca_file``: the CA of the server's HTTPS
    certificate when it is not in the system's trust store (a school's own CA)."""

    base_url: str
    token: str
    ca_file: Path | None = None
    timeout_s: float = 30.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer of ``method path``; :class:`ApiError` for any failure."""
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True
        )
        url = self.base_url + path
        try:
            response = httpx.request(
                method,
                url,
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                verify=verify,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the server at {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(
                f"{method} {path}: {response.status_code} {server_message(response)}",
                response.status_code,
            )
        return response.json() if response.content else None

    def devices(self) -> list[dict[str, Any]]:
        return self.call("GET", "/devices")

    def find_device(self, name: str) -> dict[str, Any]:
        """The device named ``site.device``, or ``device`` alone when one site has it."""
        site, _, device = name.rpartition(".")
        found = [
            d
            for d in self.devices()
            if d["device_id"] == device and (not site or d["site"] == site)
        ]
        if not found:
            raise ApiError(f"no device {name} on the server / không tìm thấy thiết bị", 404)
        if len(found) > 1:
            names = ", ".join(f"{d['site']}.{d['device_id']}" for d in found)
            raise ApiError(f"{name} is at several sites ({names}): say which, as SITE.DEVICE")
        return found[0]

    def register(self, site: str, device: str, name: str, direction: str) -> dict[str, Any]:
        body = {"site": site, "device_id": device, "name": name, "direction": direction}
        return self.call("POST", "/devices", body)

    def issue_secret(self, device_id: int) -> dict[str, Any]:
        return self.call("PUT", f"/devices/{device_id}/secret")

    def issue_claim_token(self, device_id: int, ttl_s: int) -> dict[str, Any]:
        return self.call("POST", f"/devices/{device_id}/claim-tokens", {"ttl_s": ttl_s})

    def revoke(self, device_id: int) -> dict[str, Any]:
        return self.call("POST", f"/devices/{device_id}/revoke")

    def broker_accounts(self) -> list[dict[str, Any]]:
        return self.call("GET", "/devices/broker-accounts")

    def gallery_key(self) -> dict[str, Any]:
        return self.call("GET", "/devices/gallery-key")
