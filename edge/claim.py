"""Exchanging a one-time claim token for the gate's own credential, at start-up.

A gate provisioned by claim boots with a ``gate.toml`` whose ``[claim]`` table holds the
server's API base and the token, the CA certificate, and no secret. Before anything else it
posts the token to ``{server_url}/devices/claim``; the answer holds its secret and the server's
gallery key. The secret goes into ``[broker] password`` of the same file and ``[claim]`` goes
away (the token is spent), the key into ``gallery.public_key``: the next start is an ordinary
one and needs no server for it.

The server's refusal (an unknown token, a used or expired one, a disabled gate) is final:
:class:`ClaimError` with the server's message, and nothing is written. An unreachable server
or a 5xx answer is retried with backoff for a while, since a gate often boots before its
network is up; then :class:`ClaimError` too, and the service manager starts the gate again.
"""

from __future__ import annotations

import logging
import ssl
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
from pydantic import BaseModel, ValidationError

from edge.config import EdgeConfig, load_config
from edge.config_writer import write_config

log = logging.getLogger(__name__)

CLAIM_PATH = "/devices/claim"
RETRY_FOR_S = 120.0
"""Seconds of pauses between claim attempts before giving up (the service manager restarts)."""
_MAX_DELAY_S = 10.0


class ClaimError(RuntimeError):
    """The claim failed; the message says why (the server's words when it refused)."""


class _Credential(BaseModel):
    site: str
    device: str
    username: str
    password: str
    gallery_public_key: str


def needs_claim(config: EdgeConfig) -> bool:
    """Whether ``config`` holds a claim token and no credential to use instead."""
    broker = config.broker
    return config.claim is not None and broker.password is None and broker.client_cert is None


def claim_credential(
    config: EdgeConfig,
    path: Path,
    *,
    retry_for_s: float = RETRY_FOR_S,
    sleep: Callable[[float], None] = time.sleep,
) -> EdgeConfig:
    """Exchange the claim token of ``config`` (read from ``path``), write the credential into
    ``path`` and the gallery key beside it, and return the configuration as it now stands."""
    claim = config.claim
    if claim is None:
        raise ClaimError(f"{path} holds no [claim] table")
    url = claim.server_url.rstrip("/") + CLAIM_PATH
    ca_file = config.broker.ca_file
    # The server's certificate comes from the deployment's CA, like the broker's, unless the
    # bundle has none; then the system's trust store decides.
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else True
    )
    answer = _exchange(url, claim.token.get_secret_value(), verify, retry_for_s, sleep)
    try:
        credential = _Credential.model_validate(answer)
    except ValidationError:
        raise ClaimError(f"{url} answered something that is not a credential") from None
    expected = (config.device.site, config.device.device)
    if (credential.site, credential.device) != expected:
        raise ClaimError(
            f"the token was issued for {credential.site}/{credential.device}, but this gate is "
            f"{expected[0]}/{expected[1]}: issue a token for this gate"
        )
    key_path = Path(config.gallery.public_key)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(credential.gallery_public_key)
    raw = tomllib.loads(path.read_text())
    raw.pop("claim", None)
    broker = raw.setdefault("broker", {})
    broker["password"] = credential.password
    if credential.username != config.username:
        broker["username"] = credential.username
    write_config(path, raw)
    log.info("credential claimed", extra={"site": expected[0], "device": expected[1]})
    return load_config(path)


def _exchange(
    url: str,
    token: str,
    verify: ssl.SSLContext | bool,
    retry_for_s: float,
    sleep: Callable[[float], None],
) -> object:
    """POST the token; the JSON answer, or :class:`ClaimError` once refused, or once the
    pauses between attempts would add up to more than ``retry_for_s``."""
    waited, delay = 0.0, 1.0
    while True:
        try:
            response = httpx.post(url, json={"token": token}, verify=verify, timeout=15.0)
        except httpx.TransportError as exc:
            problem = f"cannot reach {url}: {exc}"
        else:
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError:
                    raise ClaimError(f"{url} answered something that is not JSON") from None
            if response.status_code < 500:
                raise ClaimError(
                    f"the server refused the claim token ({response.status_code}): "
                    f"{server_message(response)}"
                )
            problem = f"{url} answered {response.status_code}: {server_message(response)}"
        if waited + delay > retry_for_s:
            raise ClaimError(problem)
        log.warning("claim failed; retrying", extra={"reason": problem, "retry_in_s": delay})
        sleep(delay)
        waited += delay
        delay = min(delay * 2, _MAX_DELAY_S)


def server_message(response: httpx.Response) -> str:
    """The API's ``detail`` (its message, or pydantic's field errors), else the body's start."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:300]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:])}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
    return str(detail) if detail else response.text[:300]
