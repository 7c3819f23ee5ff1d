"""A whole gate on a real Mosquitto: a student walks by, the right event reaches the server.

The video is made from one photo of a person; the gallery from *other* photos of them and of
other people, served over HTTP by a local server and announced by a signed, retained notice —
the path a real gallery takes.
"""

from __future__ import annotations

import hashlib
import http.server
import queue
import threading
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from benchmarks.walk_video import make_walk_video
from broker.codec import decode, encode
from broker.gallery_signing import sign
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import GalleryNotice, GateConfig, Receipt, utc_now
from broker.topics import Channel, device_topic
from edge.agent import Gate
from edge.config import load_config
from models.engine import FaceEngine
from models.gallery import Gallery
from models.images import read_image
from tests.fixtures.mosquitto import MosquittoInstance, connect

WALKER = "face_recognition/by_identity/obama/obama.jpg"
ENROLLED = {
    "obama": [
        "face_recognition/by_identity/obama/obama2.jpg",
        "face_recognition/by_identity/obama/obama3.jpg",
    ],
    "biden": [
        "face_recognition/by_identity/biden/biden.jpg",
        "face_recognition/by_identity/biden/biden2.jpg",
    ],
    "angelina": [
        "deepface/by_identity/id01_angelina/img1.jpg",
        "deepface/by_identity/id01_angelina/img2.jpg",
    ],
}


def _gallery(engine: FaceEngine, faces_dir: Path) -> bytes:
    gallery = Gallery(pack=engine.pack.name, dim=engine.embedding_size, threshold=engine.threshold)
    for person, photos in ENROLLED.items():
        rows = []
        for photo in photos:
            faces = engine.analyse(read_image(faces_dir / photo))
            rows.append(faces.embeddings[int(np.argmax(faces.quality.size_px))])
        gallery.add(person, np.stack(rows))
    return gallery.to_bytes()


def _serve(data: bytes) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/gallery/1"


def test_a_student_walking_by_becomes_one_event_with_the_server_s_config(
    mosquitto: MosquittoInstance, engine: FaceEngine, default_pack, faces_dir: Path, tmp_path
) -> None:
    photo = read_image(faces_dir / WALKER)
    found = engine.detect(photo)
    video = make_walk_video(photo, tuple(found.boxes[0]), tmp_path / "walk.avi")

    key = Ed25519PrivateKey.generate()
    (tmp_path / "gallery.pub").write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    data = _gallery(engine, faces_dir)
    httpd, url = _serve(data)
    fields = dict(
        site="school-a",
        version=Gallery.from_bytes(data).version,
        model_pack=default_pack.name,
        entries=6,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        key_id="k1",
    )
    notice = GalleryNotice(**fields, ts=utc_now(), url=url, signature=sign(key, **fields))

    server = mosquitto.client(SERVER_USERNAME, client_id="ingest")
    events: queue.Queue = queue.Queue()

    def receive(client, _userdata, message) -> None:
        """Keep the event and answer with its receipt, as ingest does once it is stored (else
        a walk longer than the receipt timeout would have the gate send the event again)."""
        events.put((message.topic, message.payload))
        event = decode(message.topic, message.payload).message
        stored = Receipt(ts=utc_now(), event_ids=[event.event_id])
        client.publish(device_topic(Channel.STORED, event.site, event.device), encode(stored), 1)

    server.on_message = receive
    assert connect(mosquitto, server) == 0
    server.subscribe("cg/v1/+/+/events", qos=1)
    server.publish("cg/v1/school-a/gallery", encode(notice), qos=1, retain=True).wait_for_publish(5)
    # The server wants this gate to count exits: its retained config overrides the file's "in".
    desired = GateConfig(
        revision=1,
        ts=utc_now(),
        direction="out",
        match_threshold=0.939,
        min_face_px=60,
        detect_fps=15,
        cooldown_s=120,
        require_face=False,
    )
    server.publish(
        "cg/v1/school-a/gate-1/config", encode(desired), qos=1, retain=True
    ).wait_for_publish(5)

    config_file = tmp_path / "gate.toml"
    config_file.write_text(f"""
[device]
site = "school-a"
device = "gate-1"
[broker]
port = {mosquitto.layout.tls_port}
password = "{mosquitto.passwords["school-a.gate-1"]}"
ca_file = "{mosquitto.layout.cafile}"
[camera]
source = "{video}"
[recognition]
models_dir = "{default_pack.root.parent}"
min_face_px = 60
detect_fps = 15
[storage]
data_dir = "data"
""")
    gate = Gate(load_config(config_file))
    stop = threading.Event()
    # Hold the camera until the gallery has arrived, as a gate does with its stored one.
    runner = threading.Thread(target=lambda: (_wait_for_gallery(gate), gate.run(stop)))
    runner.start()
    try:
        topic, payload = events.get(timeout=60)
    finally:
        runner.join(timeout=60)
        stop.set()
        httpd.shutdown()
    event = decode(topic, payload).message
    assert topic == "cg/v1/school-a/gate-1/events"
    assert (event.kind, event.student_id, event.direction) == ("face", "obama", "out")
    assert event.score >= engine.threshold and event.latency_ms > 0
    assert event.gallery_version == fields["version"] and event.model_pack == default_pack.name
    others = []
    while not events.empty():
        others.append(decode(*events.get()).message.student_id)
    assert others == [], "one walk must give exactly one event"


def _wait_for_gallery(gate: Gate, timeout: float = 30.0) -> None:
    gate.connect()
    deadline = threading.Event()
    for _ in range(int(timeout * 10)):
        if gate.gallery.current() is not None:
            return
        deadline.wait(0.1)
    pytest.fail("the gate never received the gallery")
