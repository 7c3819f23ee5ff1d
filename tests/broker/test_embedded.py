"""The embedded broker carries QoS 1 messages with paho-mqtt and stays on loopback."""

from __future__ import annotations

import queue

import paho.mqtt.client as mqtt
import pytest

from broker.codec import decode, encode
from broker.embedded import EmbeddedBroker, EmbeddedBrokerError
from broker.payloads import Status, utc_now
from broker.topics import Channel, device_topic


def _client(broker: EmbeddedBroker, name: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_publish_and_subscribe_at_qos_1() -> None:
    with EmbeddedBroker(port=0) as broker:
        received: queue.Queue = queue.Queue()
        subscribed: queue.Queue = queue.Queue()
        sub = _client(broker, "server")
        sub.on_message = lambda _c, _u, m: received.put((m.topic, m.payload, m.qos, m.retain))
        sub.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
        sub.subscribe("cg/v1/+/+/status", qos=1)
        assert subscribed.get(timeout=5)[0] == 1
        pub = _client(broker, "gate-1")
        topic = device_topic(Channel.STATUS, "school-a", "gate-1")
        message = Status(
            state="online", ts=utc_now(), site="school-a", device="gate-1", version="0.1.0"
        )

        info = pub.publish(topic, encode(message), qos=1)
        info.wait_for_publish(5)

        assert info.is_published()  # the broker sent PUBACK
        got_topic, payload, qos, _ = received.get(timeout=5)
        assert (got_topic, qos) == (topic, 1)
        assert decode(got_topic, payload).message == message
        for client in (sub, pub):
            client.disconnect()
            client.loop_stop()


def test_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(EmbeddedBrokerError, match="loopback"):
        EmbeddedBroker("0.0.0.0", 0)
