"""One short MQTT connection to a broker, for gatectl's diagnostics, with failures explained.

``gate status`` listens with the server's account and ``doctor`` signs in with a gate's own
credential; both need a real CONNACK and, when it does not come, a sentence a technician can
act on: a refused password, a broker that is not there, a certificate the CA did not sign.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

_CREDENTIALS_HINT = (
    "check the username and password (broker.password in the gate's config or bundle); Mosquitto "
    "refuses a wrong password, an unknown account and a revoked gate alike"
)
_HINTS = {"Bad user name or password": _CREDENTIALS_HINT, "Not authorized": _CREDENTIALS_HINT}


class BrokerConnectError(RuntimeError):
    """No session with the broker: ``problem`` says why, ``hint`` what to check."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"{problem}; {hint}")
        self.problem = problem
        self.hint = hint


@dataclass(frozen=True)
class BrokerTarget:
    """Where a broker is and how to sign in: TLS when ``tls`` (``ca_file``: the CA to trust,
    else the system's), with a client certificate when ``client_cert`` is set."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" + (" (TLS)" if self.tls else "")


def connect(
    target: BrokerTarget,
    *,
    client_id: str = "",
    clean_session: bool = True,
    timeout: float = 5.0,
) -> mqtt.Client:
    """A client with an accepted session and its network loop running; the caller disconnects
    it (and stops the loop). Raises :class:`BrokerConnectError` otherwise.

    With ``clean_session=False`` the client acknowledges nothing by itself (manual acks), so
    resuming a gate's persistent session takes none of the messages queued for the gate: the
    broker sends them again when the gate itself reconnects.
    """
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,  # what the gates and the embedded broker speak
        clean_session=clean_session,
        manual_ack=not clean_session,
    )
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        try:
            client.tls_set(
                ca_certs=str(target.ca_file) if target.ca_file else None,
                certfile=str(target.client_cert) if target.client_cert else None,
                keyfile=str(target.client_key) if target.client_key else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        except (OSError, ssl.SSLError) as exc:
            raise BrokerConnectError(
                f"cannot load the TLS files: {exc}", "check ca_file, client_cert and client_key"
            ) from None
    answered = threading.Event()
    codes: list[mqtt.ReasonCode] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, code: mqtt.ReasonCode, _p: object):
        codes.append(code)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(target.host, target.port, keepalive=30)
    except ssl.SSLCertVerificationError as exc:
        raise BrokerConnectError(
            f"{target.address}: the broker's certificate is not trusted ({exc.verify_message})",
            "use the CA that signed it (ca_file / --ca), and a host name the certificate names",
        ) from None
    except ssl.SSLError as exc:
        raise BrokerConnectError(
            f"{target.address}: TLS failed ({exc.reason or exc})", "is this the TLS port?"
        ) from None
    except ConnectionResetError:
        if not target.tls:
            raise BrokerConnectError(
                f"{target.address}: the broker hung up at once", "see the broker's log"
            ) from None
        raise BrokerConnectError(
            f"{target.address}: the TLS handshake was cut off",
            f"is {target.port} the broker's TLS port?",
        ) from None
    except OSError as exc:  # refused, unreachable, unknown host, timed out
        reason = exc.strerror or str(exc)
        raise BrokerConnectError(
            f"{target.address}: cannot reach the broker ({reason})",
            "check the address, the port, the network and that the broker runs",
        ) from None
    client.loop_start()
    if not answered.wait(timeout) or not codes:
        close(client)
        raise BrokerConnectError(
            f"{target.address}: no answer to CONNECT within {timeout:g} s",
            "plain MQTT sent to a TLS port? set ca_file (--ca) for the TLS listener",
        )
    if codes[0].is_failure:
        close(client)
        refusal = str(codes[0])
        hint = _HINTS.get(refusal, "see the broker's log")
        raise BrokerConnectError(f"{target.address} refused the connection: {refusal}", hint)
    return client


def close(client: mqtt.Client) -> None:
    """Disconnect cleanly (no last will) and stop the network loop."""
    client.disconnect()
    client.loop_stop()
