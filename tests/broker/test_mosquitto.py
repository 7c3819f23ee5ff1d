"""The production broker config, exercised on a real Mosquitto: TLS, credentials, ACL, will."""

from __future__ import annotations

import queue
import uuid

import paho.mqtt.client as mqtt

from broker.codec import decode, encode
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import Event, Status, utc_now
from broker.topics import Channel, device_topic
from tests.fixtures.mosquitto import MosquittoInstance, connect

GATE_1 = "school-a.gate-1"
GATE_2 = "school-a.gate-2"


def _event(device: str) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        kind="card",
        ts=utc_now(),
        site="school-a",
        device=device,
        direction="in",
        card_uid="04A1B2C3D4E5F6",
        latency_ms=12.0,
    )


def _subscriber(broker: MosquittoInstance, topic: str, tls: bool = True) -> queue.Queue:
    """A server-side subscriber (over TLS by default) that queues what it receives."""
    received: queue.Queue = queue.Queue()
    client = broker.client(SERVER_USERNAME, tls=tls, client_id="server-test")
    client.on_message = lambda _c, _u, msg: received.put((msg.topic, msg.payload, msg.retain))
    assert connect(broker, client, tls=tls) == 0
    subscribed = queue.Queue()
    client.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
    client.subscribe(topic, qos=1)
    codes = subscribed.get(timeout=5)
    assert not codes[0].is_failure
    return received


def _publisher(broker: MosquittoInstance, username: str) -> mqtt.Client:
    client = broker.client(username)
    assert connect(broker, client) == 0
    return client


def test_device_events_reach_the_server_over_tls(mosquitto: MosquittoInstance) -> None:
    received = _subscriber(mosquitto, "cg/v1/+/+/events")
    gate = _publisher(mosquitto, GATE_1)
    event = _event("gate-1")
    topic = device_topic(Channel.EVENTS, "school-a", "gate-1")

    gate.publish(topic, encode(event), qos=1).wait_for_publish(5)

    got_topic, payload, _ = received.get(timeout=5)
    assert got_topic == topic
    assert decode(got_topic, payload).message == event


def test_device_cannot_publish_as_another_device(mosquitto: MosquittoInstance) -> None:
    received = _subscriber(mosquitto, "cg/v1/+/+/events")
    gate = _publisher(mosquitto, GATE_1)
    forged = device_topic(Channel.EVENTS, "school-a", "gate-2")
    own = device_topic(Channel.EVENTS, "school-a", "gate-1")

    gate.publish(forged, encode(_event("gate-2")), qos=1).wait_for_publish(5)
    gate.publish(own, encode(_event("gate-1")), qos=1).wait_for_publish(5)

    # Mosquitto keeps one publisher's messages in order: once the allowed one has arrived, the
    # forged one, sent first, would have arrived before it had the ACL let it through.
    first_topic, _, _ = received.get(timeout=5)
    assert first_topic == own
    assert received.empty()


def test_device_reads_only_its_own_commands(mosquitto: MosquittoInstance) -> None:
    gate = _publisher(mosquitto, GATE_1)
    inbox: queue.Queue = queue.Queue()
    gate.on_message = lambda _c, _u, msg: inbox.put(msg.topic)
    subscribed: queue.Queue = queue.Queue()
    gate.on_subscribe = lambda _c, _u, _mid, codes, _p: subscribed.put(codes)
    # Mosquitto 2.0 grants the subscription and enforces the ACL on each delivery instead.
    gate.subscribe([("cg/v1/school-a/gate-2/cmd", 1), ("cg/v1/school-a/gate-1/cmd", 1)])
    subscribed.get(timeout=5)

    server = _publisher(mosquitto, SERVER_USERNAME)
    server.publish("cg/v1/school-a/gate-2/cmd", b"{}", qos=1).wait_for_publish(5)
    server.publish("cg/v1/school-a/gate-1/cmd", b"{}", qos=1).wait_for_publish(5)

    assert inbox.get(timeout=5) == "cg/v1/school-a/gate-1/cmd"
    assert inbox.empty()


def test_anonymous_and_wrong_password_are_refused(mosquitto: MosquittoInstance) -> None:
    for tls in (True, False):
        anonymous = mosquitto.client(None, tls=tls, client_id=f"anon-{tls}")
        assert connect(mosquitto, anonymous, tls=tls) == "Not authorized"
        wrong = mosquitto.client(GATE_1, "not-the-password", tls=tls, client_id=f"wrong-{tls}")
        assert connect(mosquitto, wrong, tls=tls) == "Not authorized"


def test_tls_listener_refuses_a_client_that_does_not_trust_the_ca(
    mosquitto: MosquittoInstance, tmp_path
) -> None:
    from broker.pki import create_ca

    other_ca = tmp_path / "other-ca.crt"
    create_ca("someone else").write(other_ca, tmp_path / "other-ca.key")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mitm", protocol=mqtt.MQTTv311)
    client.username_pw_set(GATE_1, mosquitto.passwords[GATE_1])
    client.tls_set(ca_certs=str(other_ca))
    try:
        client.connect("127.0.0.1", mosquitto.port(tls=True))
    except Exception as exc:  # ssl.SSLCertVerificationError
        assert "certificate verify failed" in str(exc)
    else:
        raise AssertionError("connected to a broker whose certificate it should not trust")


def _status(state: str) -> bytes:
    return encode(
        Status(
            state=state,
            ts=utc_now(),
            site="school-a",
            device="gate-1",
            version="0.1.0",
            model_pack="dlib-r29-mtcnn",
            gallery_version=3,
        )
    )


def test_retained_status_and_last_will(mosquitto: MosquittoInstance) -> None:
    topic = device_topic(Channel.STATUS, "school-a", "gate-1")
    gate = mosquitto.client(GATE_1, will=(topic, _status("offline")))
    assert connect(mosquitto, gate) == 0
    gate.publish(topic, _status("online"), qos=1, retain=True).wait_for_publish(5)

    late_joiner = _subscriber(mosquitto, topic)
    got_topic, payload, retained = late_joiner.get(timeout=5)
    assert retained and decode(got_topic, payload).message.state == "online"

    # The gate vanishes without a DISCONNECT (power cut): the broker publishes its will.
    gate.loop_stop()
    gate.socket().close()
    _, payload, _ = late_joiner.get(timeout=10)
    assert decode(topic, payload).message.state == "offline"

    after = _subscriber(mosquitto, topic, tls=False)
    _, payload, retained = after.get(timeout=5)
    assert retained and decode(topic, payload).message.state == "offline"


def test_only_the_server_may_delete_a_gates_retained_status(mosquitto: MosquittoInstance) -> None:
    """gatectl deletes the status of a gate the broker cut off (which gets no will) with the
    server's account; another gate cannot delete it, nor write it."""
    topic = device_topic(Channel.STATUS, "school-a", "gate-1")
    gate = _publisher(mosquitto, GATE_1)
    gate.publish(topic, _status("online"), qos=1, retain=True).wait_for_publish(5)

    other = _publisher(mosquitto, GATE_2)
    other.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    _, payload, retained = _subscriber(mosquitto, topic, tls=False).get(timeout=5)
    assert retained and decode(topic, payload).message.state == "online"

    server = _publisher(mosquitto, SERVER_USERNAME)
    server.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    late_joiner = _subscriber(mosquitto, topic, tls=False)
    # A retained status would reach a new subscriber before anything published after it came.
    gate.publish(topic, _status("online"), qos=1).wait_for_publish(5)
    _, payload, retained = late_joiner.get(timeout=5)
    assert not retained and decode(topic, payload).message.state == "online"
