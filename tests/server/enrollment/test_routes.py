"""The enrollment and gallery routes end to end: an admin enrolls over HTTP, a real HTTP server
serves the signed gallery to the gate's own fetch and store, and the retained notice waits on a
real Mosquitto."""

from __future__ import annotations

import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, func, select

from broker import passwords
from broker.codec import validate_payload
from broker.gallery_signing import verify
from broker.managed import MosquittoInstance, connect, free_port
from broker.mosquitto_config import SERVER_USERNAME
from broker.payloads import GalleryNotice
from broker.pki import create_ca, issue_server_cert
from broker.topics import Channel
from edge.config import load_config
from edge.config_writer import write_config
from edge.fetch import https_fetcher
from edge.gallery_store import GalleryStore
from firmware_tools.doctor import check_gallery
from models.engine import FaceEngine
from models.gallery_delta import GalleryDelta
from server.auth_models import DeviceSecret
from server.core.config import MqttSection
from server.faces import shared_engine
from server.gallery_announce import mqtt_announcer
from server.gallery_key import load_or_create_key
from server.gallery_publish import GalleryPublisher, newest_version, shared_publisher
from server.models import AuditLog, FaceEnrollment
from tests.server.api.conftest import Clients, Seed
from tests.server.conftest import make_school
from tests.server.enrollment.conftest import (
    BIDEN,
    GATE_PASSWORD,
    GROUP,
    OBAMA,
    OBAMA_2,
    add_templates,
)

CONSENT = {"given_by": "guardian", "given_by_name": "Trần Văn Bố"}


@contextmanager
def served(app: FastAPI, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """The app served by uvicorn on loopback (HTTPS with the ``tls`` certificate and key), as
    gates reach the server; yields its ``…/api/v1`` base."""
    port = free_port()
    certfile, keyfile = tls or (None, None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        threading.Event().wait(0.02)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def http_base(app: FastAPI) -> Iterator[str]:
    with served(app) as base:
        yield base


@pytest.fixture
def publisher(tmp_path: Path, default_pack, http_base: str) -> GalleryPublisher:
    return GalleryPublisher(default_pack.manifest, load_or_create_key(tmp_path / "key"), http_base)


def _upload(client: TestClient, student_id: int, *photos: bytes, **fields: str):
    files = [
        ("photos", (f"../../etc/passwd{n}.jpg", data, "image/jpeg"))
        for n, data in enumerate(photos)
    ]
    return client.post(f"/api/v1/students/{student_id}/faces", files=files, data=fields)


def _templates(db: Session) -> int:
    db.rollback()
    return db.exec(select(func.count()).select_from(FaceEnrollment)).one()


def _store(tmp_path: Path, publisher: GalleryPublisher, username: str, password: str, pack=None):
    """A gate's gallery store, fetching with the gate's own HTTP client code."""
    fetch = https_fetcher(username, password, ca_file=None)
    pack = pack or publisher.manifest.name
    return GalleryStore(tmp_path / "gallery.cggal", pack, publisher.key.public_key, fetch)


def _current_notice(db: Session, publisher: GalleryPublisher, seed: Seed) -> GalleryNotice:
    db.rollback()
    return publisher.notice("school-a", newest_version(db, seed.world.site.id))


def test_an_enrolled_student_reaches_the_gate_through_the_signed_gallery(
    db: Session,
    seed: Seed,
    clients: Clients,
    wired: GalleryPublisher,
    gate: str,
    photo,
    tmp_path: Path,
) -> None:
    student = seed.students[0]
    answer = _upload(clients.admin, student.id, photo(OBAMA), photo(OBAMA_2), **CONSENT)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["templates"] == 2 and body["model_pack"] == wired.manifest.name
    [site] = body["galleries"]
    assert site["site"] == "school-a" and site["changed"]

    store = _store(tmp_path, wired, gate, GATE_PASSWORD)
    notice = _current_notice(db, wired, seed)
    assert store.apply(notice)
    assert store.current().persons == (student.code,) and store.version == site["version"]

    withdrawn = clients.admin.delete(f"/api/v1/students/{student.id}/faces")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["templates_deleted"] == 2
    newer = _current_notice(db, wired, seed)
    assert newer.version == withdrawn.json()["galleries"][0]["version"] > notice.version
    assert store.apply(newer) and store.current().persons == ()
    assert _templates(db) == 0
    assert store.path.read_bytes() == newest_version(db, seed.world.site.id).data


def test_a_gate_takes_a_delta_and_falls_back_to_the_file_when_none_can_be_built(
    db: Session, seed: Seed, wired: GalleryPublisher, gate: str, tmp_path: Path
) -> None:
    """A school's gallery is much bigger than a morning's changes (here 60 rows against 3), so
    the gate takes a delta. Deltas carry templates from the database, so a student enrolled and
    erased while the gate was away leaves none (410): the gate fetches the file instead, and
    either way holds the very file the server published."""
    pack, site_id = wired.manifest.name, seed.world.site.id
    first, second, third = seed.students[:3]
    add_templates(db, first, 60, pack)
    store = _store(tmp_path, wired, gate, GATE_PASSWORD)
    assert store.apply(wired.publish_site(db, "school-a", reason="test").notice)
    add_templates(db, second, 3, pack, rng_seed=1)
    assert store.apply(wired.publish_site(db, "school-a", reason="test").notice)
    assert (store.by_file, store.by_delta) == (1, 1)
    assert store.current().persons == tuple(sorted((first.code, second.code)))

    add_templates(db, third, 2, pack, rng_seed=2)
    wired.publish_site(db, "school-a", reason="test")  # the gate misses this one
    for enrollment in db.exec(select(FaceEnrollment).where(FaceEnrollment.student_id == third.id)):
        db.delete(enrollment)
    db.commit()
    last = wired.publish_site(db, "school-a", reason="test").notice
    assert store.apply(last)
    assert (store.by_file, store.by_delta, store.rejected) == (2, 1, 0)
    assert store.path.read_bytes() == newest_version(db, site_id).data


@dataclass
class HttpsSchool:
    """The app served over HTTPS with a certificate of the deployment's CA, and its publisher
    naming that address; ``ca`` is the CA file a gate's bundle holds, ``impostor`` another."""

    base: str
    publisher: GalleryPublisher
    ca: Path
    impostor: Path


@pytest.fixture
def https_school(
    app: FastAPI, default_pack, face_engine: FaceEngine, tmp_path: Path
) -> Iterator[HttpsSchool]:
    """``campusgate server run --tls-cert …`` as gates meet it."""
    ca, impostor = create_ca(), create_ca("another CA")
    ca.write(tmp_path / "ca.crt", tmp_path / "ca.key")
    impostor.write(tmp_path / "impostor.crt", tmp_path / "impostor.key")
    tls = (tmp_path / "server.crt", tmp_path / "server.key")
    issue_server_cert(ca, ["127.0.0.1"]).write(*tls)
    with served(app, tls) as base:
        publisher = GalleryPublisher(
            default_pack.manifest, load_or_create_key(tmp_path / "key"), base
        )
        app.dependency_overrides[shared_engine] = lambda: face_engine
        app.dependency_overrides[shared_publisher] = lambda: publisher
        yield HttpsSchool(base, publisher, tmp_path / "ca.crt", tmp_path / "impostor.crt")


def test_the_gate_fetches_its_gallery_over_https_trusting_only_the_deployment_s_ca(
    db: Session, seed: Seed, https_school: HttpsSchool, gate: str, tmp_path: Path
) -> None:
    """The bundle's CA (the one ``gatectl broker ca`` made) verifies the server; a server it
    did not sign is not trusted, and that gate keeps what it had."""
    student = seed.students[0]
    publisher = https_school.publisher
    add_templates(db, student, 2, publisher.manifest.name)
    notice = publisher.publish_site(db, "school-a", reason="test").notice
    assert str(notice.url).startswith("https://")

    def store(ca_file: Path, name: str) -> GalleryStore:
        fetch = https_fetcher(gate, GATE_PASSWORD, ca_file=ca_file)
        path = tmp_path / f"{name}.cggal"
        return GalleryStore(path, publisher.manifest.name, publisher.key.public_key, fetch)

    trusting = store(https_school.ca, "trusting")
    assert trusting.apply(notice)
    assert trusting.current().persons == (student.code,)
    fooled = store(https_school.impostor, "fooled")
    assert not fooled.apply(notice)
    assert (fooled.rejected, fooled.current()) == (1, None)


def test_a_gate_reads_its_site_s_newest_notice_from_the_server(
    db: Session, seed: Seed, https_school: HttpsSchool, gate: str
) -> None:
    """The notice the broker keeps retained, from the server itself (for ``gatectl doctor``)."""
    url = f"{https_school.base}/gallery/school-a"
    trust = ssl.create_default_context(cafile=https_school.ca)
    assert httpx.get(url, auth=(gate, GATE_PASSWORD), verify=trust).status_code == 404
    add_templates(db, seed.students[0], 2, https_school.publisher.manifest.name)
    published = https_school.publisher.publish_site(db, "school-a", reason="test").notice
    answer = httpx.get(url, auth=(gate, GATE_PASSWORD), verify=trust)
    assert answer.status_code == 200, answer.text
    assert GalleryNotice.model_validate_json(answer.content) == published
    assert httpx.get(url, auth=(gate, "wrong"), verify=trust).status_code == 401
    other = f"{https_school.base}/gallery/school-b"
    assert httpx.get(other, auth=(gate, GATE_PASSWORD), verify=trust).status_code == 404


def _gate_config(folder: Path, school: HttpsSchool, ca: Path, password: str, key: bytes) -> Path:
    """A gate.toml as a bundle gives it (the broker is not needed by the gallery check)."""
    (folder / "gallery.pub").write_bytes(key)
    config = folder / "gate.toml"
    write_config(
        config,
        {
            "device": {"site": "school-a", "device": "gate-1"},
            "broker": {"host": "127.0.0.1", "port": 8883, "password": password, "ca_file": ca},
            "recognition": {"pack": school.publisher.manifest.name},
            "storage": {"data_dir": "data"},
        },
    )
    return config


def test_gatectl_doctor_fetches_the_gallery_as_the_gate_would(
    db: Session, seed: Seed, https_school: HttpsSchool, gate: str, tmp_path: Path
) -> None:
    """Each way a provisioned gate can fail to get its gallery gets its own hint."""
    school, publisher = https_school, https_school.publisher
    public = publisher.key.public_pem()

    def doctor(ca: Path = school.ca, password: str = GATE_PASSWORD, key: bytes = public):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        config = load_config(_gate_config(folder, school, ca, password, key))
        return check_gallery(config, school.base, timeout=10)

    assert doctor().outcome == "skip"  # nothing published yet
    add_templates(db, seed.students[0], 3, publisher.manifest.name)
    version = publisher.publish_site(db, "school-a", reason="test").version
    good = doctor()
    assert good.outcome == "pass", good
    assert good.detail.startswith(f"version {version}, 3 templates of 1 students from https://")

    wrong = doctor(password="not-the-secret")
    assert (wrong.outcome, "401" in wrong.detail) == ("fail", True)
    assert "provision the gate again" in wrong.hint
    untrusted = doctor(ca=school.impostor)
    assert untrusted.outcome == "fail" and "not signed by the gate's CA" in untrusted.detail
    assert "--tls-cert" in untrusted.hint
    stale_key = load_or_create_key(tmp_path / "old-key").public_pem()
    refused = doctor(key=stale_key)
    assert refused.outcome == "fail" and refused.detail.startswith(f"version {version} refused")
    assert "old gallery.pub" in refused.hint


def test_a_gate_of_another_pack_refuses_the_gallery(
    db: Session, seed: Seed, wired: GalleryPublisher, gate: str, tmp_path: Path
) -> None:
    notice = wired.publish_site(db, "school-a", reason="test").notice
    store = _store(tmp_path, wired, gate, GATE_PASSWORD, pack="buffalo_l")
    assert not store.apply(notice) and store.rejected == 1


def test_only_the_site_s_own_gates_with_their_password_get_the_file(
    db: Session, seed: Seed, wired: GalleryPublisher, gate: str, http_base: str
) -> None:
    other = make_school(db, site="school-b", devices=("gate-9",), prefix="OB")
    device = other.devices["gate-9"]
    db.add(DeviceSecret(device_id=device.id, secret_hash=passwords.hash_password("other-secret")))
    db.commit()
    version = wired.publish_site(db, "school-a", reason="test").version
    wired.publish_site(db, "school-b", reason="test")
    url = f"{http_base}/gallery/school-a/{version}"

    assert httpx.get(url, auth=(gate, GATE_PASSWORD)).status_code == 200
    assert httpx.get(url, auth=(gate, "wrong")).status_code == 401
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("school-b.gate-9", "other-secret")).status_code == 404
    stale = f"{http_base}/gallery/school-a/{version + 1}"
    assert httpx.get(stale, auth=(gate, GATE_PASSWORD)).status_code == 404


def test_a_gate_may_ask_for_a_delta_and_falls_back_to_the_file(
    db: Session, seed: Seed, wired: GalleryPublisher, gate: str, http_base: str
) -> None:
    pack = wired.manifest.name
    add_templates(db, seed.students[0], 6, pack)
    add_templates(db, seed.students[1], 6, pack, rng_seed=1)
    since = wired.publish_site(db, "school-a", reason="test").version
    db.delete(seed.students[1])
    db.commit()
    version = wired.publish_site(db, "school-a", reason="test").version
    url = f"{http_base}/gallery/school-a/{version}"

    answer = httpx.get(url, params={"since": since}, auth=(gate, GATE_PASSWORD))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    delta = GalleryDelta.model_validate_json(answer.content)
    assert (delta.since, delta.version) == (since, version)
    gone = httpx.get(url, params={"since": since + 1000}, auth=(gate, GATE_PASSWORD))
    assert gone.status_code == 410


def test_refusals_over_http_say_why_and_store_nothing(
    db: Session, seed: Seed, clients: Clients, wired: GalleryPublisher, photo
) -> None:
    first, second = seed.students[:2]
    group = photo(GROUP)
    answer = _upload(clients.admin, first.id, photo(OBAMA), group, **CONSENT)
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]["problems"]
    assert (problem["code"], problem["photo"]) == ("several_faces", 2)
    assert _templates(db) == 0

    no_consent = _upload(clients.admin, first.id, photo(OBAMA))
    assert [p["code"] for p in no_consent.json()["detail"]["problems"]] == ["no_consent"]

    assert _upload(clients.admin, first.id, photo(OBAMA), **CONSENT).status_code == 201
    twin = _upload(clients.admin, second.id, photo(OBAMA_2), **CONSENT)
    [problem] = twin.json()["detail"]["problems"]
    assert problem["code"] == "too_close" and problem["other_student"] == first.code
    assert _templates(db) == 1


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"given_by": "neighbour", "given_by_name": "X"}, 422),
        ({"given_by": "student"}, 422),
        ({"source": "scanner", **CONSENT}, 422),
        ({"nickname": "x", **CONSENT}, 422),
    ],
)
def test_bad_form_fields_are_refused(
    db: Session, seed: Seed, clients: Clients, wired: GalleryPublisher, photo, fields, status
) -> None:
    answer = _upload(clients.admin, seed.students[0].id, photo(BIDEN), **fields)
    assert answer.status_code == status, answer.text
    assert _templates(db) == 0


def test_upload_limits(seed: Seed, clients: Clients, wired: GalleryPublisher) -> None:
    url = f"/api/v1/students/{seed.students[0].id}/faces"
    eleven = [("photos", (f"{n}.jpg", b"x", "image/jpeg")) for n in range(11)]
    assert clients.admin.post(url, files=eleven, data=CONSENT).status_code == 413
    assert clients.admin.post(url, json=CONSENT).status_code == 415
    elsewhere = [("picture", ("a.jpg", b"x", "image/jpeg"))]
    answer = clients.admin.post(url, files=elsewhere, data=CONSENT)
    assert answer.status_code == 422
    assert [p["code"] for p in answer.json()["detail"]["problems"]] == ["bad_field"]
    no_boundary = {"Content-Type": "multipart/form-data"}
    assert clients.admin.post(url, content=b"photos", headers=no_boundary).status_code == 400


def test_photos_never_touch_the_disk(
    db: Session,
    seed: Seed,
    clients: Clients,
    wired: GalleryPublisher,
    photo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def rollover(_self) -> None:
        raise AssertionError("an uploaded photo was spooled to a temporary file")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
    large = photo(OBAMA) + bytes(3 * 2**20)  # JPEG readers stop at the end-of-image marker
    answer = _upload(clients.admin, seed.students[0].id, large, **CONSENT)
    assert answer.status_code == 201, answer.text
    assert _templates(db) == 1


def test_only_admins_enroll_see_or_withdraw(
    seed: Seed, clients: Clients, wired: GalleryPublisher, photo
) -> None:
    url = f"/api/v1/students/{seed.students[0].id}/faces"
    for who in (clients.teacher, clients.parent, clients.technician):
        assert _upload(who, seed.students[0].id, photo(OBAMA), **CONSENT).status_code == 403
        assert who.get(url).status_code == 403
        assert who.delete(url).status_code == 403
    assert clients.admin.get("/api/v1/students/999999/faces").status_code == 404


def test_status_is_shown_to_admins_and_audited(
    db: Session, seed: Seed, clients: Clients, wired: GalleryPublisher, photo
) -> None:
    student = seed.students[0]
    _upload(clients.admin, student.id, photo(OBAMA), source="cccd", **CONSENT)
    body = clients.admin.get(f"/api/v1/students/{student.id}/faces").json()
    assert body["consent"]["given_by_name"] == "Trần Văn Bố"
    assert body["packs"][0]["templates"] == 1 and body["packs"][0]["sources"] == ["cccd"]
    db.rollback()
    reads = db.exec(select(AuditLog).where(AuditLog.action == "student.read")).all()
    assert [entry.student_id for entry in reads] == [student.id]


def test_an_admin_may_publish_now(seed: Seed, clients: Clients, wired: GalleryPublisher) -> None:
    first = clients.admin.post("/api/v1/gallery/school-a/publish")
    assert first.status_code == 200 and first.json()["changed"]
    again = clients.admin.post("/api/v1/gallery/school-a/publish").json()
    assert not again["changed"] and again["version"] == first.json()["version"]
    assert clients.admin.post("/api/v1/gallery/nowhere/publish").status_code == 404
    assert clients.teacher.post("/api/v1/gallery/school-a/publish").status_code == 403


def test_the_notice_is_retained_on_the_broker_for_gates(
    db: Session,
    seed: Seed,
    clients: Clients,
    app: FastAPI,
    face_engine: FaceEngine,
    publisher: GalleryPublisher,
    mosquitto: MosquittoInstance,
    photo,
) -> None:
    account = MqttSection(
        port=mosquitto.port(tls=False), password=SecretStr(mosquitto.passwords[SERVER_USERNAME])
    )
    announcing = GalleryPublisher(
        publisher.manifest, publisher.key, publisher.base_url, mqtt_announcer(account)
    )
    app.dependency_overrides[shared_engine] = lambda: face_engine
    app.dependency_overrides[shared_publisher] = lambda: announcing
    answer = _upload(clients.admin, seed.students[0].id, photo(OBAMA), **CONSENT)
    assert answer.json()["galleries"][0]["announced"], answer.text

    # A gate connecting afterwards gets the notice at once: it is retained.
    received: list[GalleryNotice] = []
    got = threading.Event()
    client = mosquitto.client("school-a.gate-1")

    def on_message(_client, _userdata, message) -> None:
        received.append(validate_payload(Channel.GALLERY, message.payload))
        assert message.retain
        got.set()

    client.on_message = on_message
    assert connect(mosquitto, client) == 0
    client.subscribe("cg/v1/school-a/gallery", qos=1)
    assert got.wait(10), "no retained gallery notice"
    [notice] = received
    verify(publisher.key.public_key, notice)
    assert notice.version == answer.json()["galleries"][0]["version"]
    assert notice.site == "school-a"
