"""The one place the HTTP gateways (eSMS, SpeedSMS, Zalo ZNS, a generic SMS gateway) are called.

Every provider agrees on what most failures mean — no answer in time, the network, 429 and 5xx
are worth retrying; a refused credential is not — so those are classified here once, and an
adapter only reads the provider's own success and error codes from what is left.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from server.notify.channel import Delivery, snippet

_RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A reply the adapter has to interpret (any status the generic rules leave open)."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None when it is not one."""
        try:
            value = json.loads(self.text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def unexpected(self, provider: str) -> Delivery:
        """A reply the provider's documentation does not describe: not retried, since repeating a
        request we do not understand may send the message twice."""
        detail = f"{provider}: unexpected reply HTTP {self.status}: {snippet(self.text)}"
        return Delivery.permanent(detail)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_status(status: int, retry_after: str | None, body: str = "") -> Delivery | None:
    """The verdict every provider shares for ``status``, or None when the provider's own codes
    decide: 408/425/429/5xx are temporary (honouring ``Retry-After``), 401/403 permanent."""
    detail = f"HTTP {status}" + (f": {snippet(body)}" if body.strip() else "")
    if status in _RETRYABLE or status >= 500:
        return Delivery.temporary(detail, parse_retry_after(retry_after))
    if status in (401, 403):
        return Delivery.permanent(f"credentials refused, {detail}")
    return None


class HttpGateway:
    """An HTTP client with the channel's timeout that turns transport failures into a
    :class:`Delivery` instead of an exception."""

    def __init__(
        self,
        timeout_s: float,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self._client = httpx.Client(timeout=timeout_s, headers=headers, auth=auth)

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply | Delivery:
        """Send once; a :class:`Delivery` for failures every provider shares, else the reply."""
        try:
            response = self._client.request(method, url, json=json_body, data=form, headers=headers)
        except httpx.TimeoutException:
            # The request may have reached the provider: the caller's idempotency key (where the
            # provider has one) is what keeps a retry from sending twice.
            return Delivery.temporary(f"no reply within {self.timeout_s:g} s")
        except httpx.TransportError as exc:
            return Delivery.temporary(f"network error: {type(exc).__name__}: {exc}")
        verdict = classify_status(
            response.status_code, response.headers.get("retry-after"), response.text
        )
        return verdict or HttpReply(response.status_code, response.text)

    def post_json(self, url: str, body: object, **kwargs: Any) -> HttpReply | Delivery:
        return self.request("POST", url, json_body=body, **kwargs)

    def close(self) -> None:
        self._client.close()
