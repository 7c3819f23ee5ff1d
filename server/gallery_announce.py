"""Announcing a gallery notice on the broker: retained, QoS 1, with the server's account.

Retained, so a gate that connects later (or reconnects after a power cut) gets the newest
notice at once; QoS 1, and we wait for the broker's PUBACK, so "announced" means the broker
has it. Notices are rare (a few per day per site), so each announcement uses a short-lived
connection rather than keeping one open beside ingest's.
"""

from __future__ import annotations

import secrets
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from server.core.config import MqttSection

Announce = Callable[[str, bytes], None]
"""``announce(topic, payload)``: publish retained at QoS 1, or raise :class:`AnnounceError`."""


class AnnounceError(RuntimeError):
    """The broker could not be reached or did not accept the notice; the message says why."""


def mqtt_announcer(settings: MqttSection, timeout_s: float = 5.0) -> Announce:
    """An :data:`Announce` that connects with the server's MQTT settings for each notice."""

    def announce(topic: str, payload: bytes) -> None:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            # A fresh id: reusing one would disconnect another process announcing at once.
            client_id=f"campusgate-gallery-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv311,  # as ingest: the embedded broker speaks nothing newer
        )
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
        if settings.ca_file is not None:
            client.tls_set(ca_certs=str(settings.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        connected = threading.Event()
        refusals: list[str] = []

        def on_connect(_c: mqtt.Client, _u: object, _f: object, code: object, _p: object) -> None:
            if getattr(code, "is_failure", False):
                refusals.append(str(code))
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(settings.host, settings.port, keepalive=settings.keepalive_s)
        except OSError as exc:
            raise AnnounceError(f"broker {settings.host}:{settings.port}: {exc}") from None
        client.loop_start()
        try:
            if not connected.wait(timeout_s):
                raise AnnounceError(f"no answer from broker {settings.host}:{settings.port}")
            if refusals:
                raise AnnounceError(f"broker refused the server's account: {refusals[0]}")
            info = client.publish(topic, payload, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                raise AnnounceError(f"cannot publish on {topic}: {exc}") from None
            if not info.is_published():
                raise AnnounceError(f"broker did not acknowledge the notice on {topic}")
        finally:
            client.disconnect()
            client.loop_stop()

    return announce
