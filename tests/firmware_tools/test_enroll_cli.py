"""``gatectl enroll`` at the enrollment desk against a real server (uvicorn in its own process,
a fresh SQLite database, the default model pack): photos from the shared set, and a CCCD read
through the emulated PN532 on a pty whose chip holds a portrait made from a shared face."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlmodel import Session, col, select

from firmware_tools.emulators.emrtd import EmrtdCard
from firmware_tools.emulators.emrtd_data import Citizen, EmrtdDocument, build_document
from firmware_tools.emulators.pn532 import EmulatedCard, PN532Emulator
from models.engine import FaceEngine
from models.images import read_image
from server.db import create_db_engine
from server.migrations import upgrade
from server.models import BiometricConsent, EnrollmentSource, FaceEnrollment, Role, Student
from tests.firmware_tools.school_server import admin_token, school_server, server_env
from tests.server.conftest import make_school

GATECTL = Path(sys.executable).parent / "gatectl"
OBAMA = "face_recognition/by_identity/obama/obama.jpg"
OBAMA_2 = "face_recognition/by_identity/obama/obama2.jpg"
GROUP = "face_recognition/_multi_face/kit_with_rose.jpg"
NO_FACE = "compreface/_no_face/017_0.jpg"
BIDEN = "face_recognition/by_identity/biden/biden.jpg"  # the card holder's face: not HS1's
CARD_HOLDER = Citizen()  # Nguyễn Thị Minh Châu, 079208001234, born 15/09/2008
HOLDER = "HS30"  # the card holder: her record carries the card's ID number as national_id
NAMESAKE = "HS31"  # same name, born the same day, another national ID number


@dataclasses.dataclass
class Desk:
    """The server and what the tests need to check its database."""

    url: str
    token: str
    db: Session

    def templates(self, code: str) -> list[FaceEnrollment]:
        self.db.rollback()  # see what the server committed
        return list(
            self.db.exec(
                select(FaceEnrollment)
                .join(Student, col(Student.id) == FaceEnrollment.student_id)
                .where(Student.code == code)
            )
        )

    def consents(self) -> list[BiometricConsent]:
        self.db.rollback()
        return list(self.db.exec(select(BiometricConsent)))


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, default_pack) -> Iterator[Desk]:
    """One school with students HS1, HS2, the card holder and her namesake (their national ID
    numbers on record) and a student whose code is a 12-digit ID number, shared by the module's
    tests: a server starts in seconds but its face engine loads on first use."""
    folder = tmp_path_factory.mktemp("desk")
    url = f"sqlite:///{folder / 'campusgate.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as db:
        world = make_school(db, students=2)
        db.add(
            Student(
                code=HOLDER,
                full_name="NGUYEN THI MINH CHAU",  # typed without accents at the school
                date_of_birth=CARD_HOLDER.date_of_birth,
                national_id=CARD_HOLDER.id_number,
                school_id=world.school.id,
                class_id=world.school_class.id,
            )
        )
        db.add(
            Student(
                code=NAMESAKE,
                full_name="Nguyễn Thị Minh Châu",
                date_of_birth=CARD_HOLDER.date_of_birth,
                national_id="079208005678",
                school_id=world.school.id,
            )
        )
        db.add(
            Student(
                code="079208009999",
                full_name="Trần Văn Nam",
                date_of_birth=CARD_HOLDER.date_of_birth,
                school_id=world.school.id,
            )
        )
        db.commit()
        token = admin_token(db)
        env = server_env(url, folder / "server", default_pack.root.parent)
        with school_server(env, folder / "server.log") as base:
            yield Desk(base, token, db)
    engine.dispose()


def enroll(desk: Desk, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, CAMPUSGATE_TOKEN=token or desk.token)
    command = [str(GATECTL), "enroll", "--server", desk.url, "--consent-by", "Trần Văn Bố", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)


def test_photos_become_templates_under_the_consent(desk: Desk, faces_dir: Path) -> None:
    photos = [str(faces_dir / OBAMA), str(faces_dir / OBAMA_2)]
    done = enroll(desk, "--student", "HS1", "--photo", photos[0], "--photo", photos[1], "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stored"] and report["templates"] == 2
    assert [p["file"] for p in report["photos"]] == ["obama.jpg", "obama2.jpg"]
    assert all(p["problems"] == [] for p in report["photos"])
    assert "2 template(s) of dlib-r29-mtcnn stored for HS1" in done.stderr
    templates = desk.templates("HS1")
    assert len(templates) == 2 and {t.source for t in templates} == {EnrollmentSource.PHOTO}
    assert "Trần Văn Bố" in {c.given_by_name for c in desk.consents()}


def test_each_refused_photo_says_why_and_nothing_is_stored(desk: Desk, faces_dir: Path) -> None:
    photos = ["--photo", str(faces_dir / GROUP), "--photo", str(faces_dir / NO_FACE)]
    done = enroll(desk, "--student", "HS2", *photos)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith("✘ photo 1 (kit_with_rose.jpg): Ảnh có 2 khuôn mặt")
    assert "The photo shows 2 faces" in lines[0]
    assert lines[1] == (
        "✘ photo 2 (017_0.jpg): Không tìm thấy khuôn mặt nào trong ảnh / No face found in the photo"
    )
    assert "refused: nothing was stored for HS2" in done.stderr
    assert desk.templates("HS2") == []


def test_an_unknown_student_or_a_technician_s_token_is_refused(desk: Desk, faces_dir: Path) -> None:
    photo = str(faces_dir / OBAMA)
    unknown = enroll(desk, "--student", "HS404", "--photo", photo)
    assert unknown.returncode == 1
    assert "không tìm thấy học sinh HS404 / no student with code HS404" in unknown.stderr
    technician = admin_token(desk.db, Role.TECHNICIAN)
    refused = enroll(desk, "--student", "HS2", "--photo", photo, token=technician)
    assert refused.returncode == 1 and "403 role technician may not do this" in refused.stderr
    assert desk.templates("HS2") == []


def test_bad_arguments_exit_2_before_anything_is_sent(desk: Desk, tmp_path: Path) -> None:
    neither = enroll(desk, "--student", "HS2")
    assert neither.returncode == 2 and "either --photo FILE" in neither.stderr
    half = enroll(desk, "--student", "HS2", "--cccd", "--port", "/dev/null")
    assert half.returncode == 2 and "--cccd needs --mrz-doc, --mrz-dob, --mrz-expiry" in half.stderr
    missing = enroll(desk, "--student", "HS2", "--photo", str(tmp_path / "none.jpg"))
    assert missing.returncode == 2 and "none.jpg: No such file" in missing.stderr


# --- CCCD ---------------------------------------------------------------------------------------


def _portrait(faces_dir: Path, engine: FaceEngine) -> np.ndarray:
    """A 240×320 passport-style portrait (RGB) cut around a shared face."""
    photo = read_image(faces_dir / BIDEN)
    x1, y1, x2, y2 = engine.detect(photo).boxes[0]
    cx, cy, half_width = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1)
    top, left = int(max(0, cy - 1.3 * half_width)), int(max(0, cx - half_width))
    crop = photo[top : int(cy + 1.4 * half_width), left : int(cx + half_width)]
    return cv2.resize(crop, (240, 320), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def card(faces_dir: Path, engine: FaceEngine) -> EmrtdDocument:
    document = build_document(CARD_HOLDER, face=_portrait(faces_dir, engine))
    assert len(document.files[0x0102]) < 32 * 1024  # DG2 fits what BAC reading reaches
    return document


@pytest.fixture
def reader_port(card: EmrtdDocument) -> Iterator[str]:
    chip = EmrtdCard(card)
    with PN532Emulator() as emulator:
        emulator.place(EmulatedCard(chip.uid, apdu=chip, ats=chip.ats))
        yield emulator.path


def cccd_args(port: str, card: EmrtdDocument, tmp_path: Path) -> list[str]:
    csca = tmp_path / "csca.pem"
    csca.write_bytes(card.pki.csca_pem())
    return [
        "--cccd", "--port", port,
        "--mrz-doc", card.mrz_document_number,
        "--mrz-birth", card.mrz_date_of_birth,
        "--mrz-expiry", card.mrz_date_of_expiry,
        "--csca", str(csca),
    ]  # fmt: skip


def test_a_cccd_of_the_student_gives_the_face_from_its_chip(
    desk: Desk, reader_port: str, card: EmrtdDocument, tmp_path: Path
) -> None:
    done = enroll(desk, "--student", HOLDER, *cccd_args(reader_port, card, tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stored"] and report["templates"] == 1
    assert report["photos"] == [{"photo": 1, "file": "cccd.jpg", "problems": []}]
    assert report["identity"]["confirmed"] == [
        "name Nguyễn Thị Minh Châu",
        f"ID number {CARD_HOLDER.id_number}",
        "date of birth 15/09/2008",
    ]
    [template] = desk.templates(HOLDER)
    assert template.source == EnrollmentSource.CCCD


def test_a_cccd_with_another_name_is_refused_and_nothing_is_uploaded(
    desk: Desk, reader_port: str, card: EmrtdDocument, tmp_path: Path
) -> None:
    consents = len(desk.consents())
    args = cccd_args(reader_port, card, tmp_path)
    done = enroll(desk, "--student", "079208009999", *args)
    assert done.returncode == 1
    assert (
        "✘ name: the card says 'Nguyễn Thị Minh Châu', the student record 'Trần Văn Nam'"
        in done.stderr
    )
    assert "✘ ID number: the card says 079208001234, the student code is 079208009999" in (
        done.stderr
    )
    assert "refused: this CCCD does not match student 079208009999" in done.stderr
    assert desk.templates("079208009999") == [] and len(desk.consents()) == consents


def test_a_cccd_of_a_namesake_born_the_same_day_is_refused_on_the_national_id(
    desk: Desk, reader_port: str, card: EmrtdDocument, tmp_path: Path
) -> None:
    consents = len(desk.consents())
    done = enroll(desk, "--student", NAMESAKE, *cccd_args(reader_port, card, tmp_path))
    assert done.returncode == 1
    assert "✔ card and record agree: name Nguyễn Thị Minh Châu" in done.stderr
    assert "✔ card and record agree: date of birth 15/09/2008" in done.stderr
    assert (
        "✘ ID number: the card says 079208001234, the national ID on record is 079208005678"
        in done.stderr
    )
    assert f"refused: this CCCD does not match student {NAMESAKE}" in done.stderr
    assert desk.templates(NAMESAKE) == [] and len(desk.consents()) == consents


def test_a_cccd_with_wrong_mrz_data_is_refused(
    desk: Desk, reader_port: str, card: EmrtdDocument, tmp_path: Path
) -> None:
    args = cccd_args(reader_port, card, tmp_path)
    args[args.index("--mrz-expiry") + 1] = (
        card.person.expiry_date + dt.timedelta(days=1)
    ).strftime("%y%m%d")
    done = enroll(desk, "--student", "HS2", *args)
    assert done.returncode == 1 and "access denied" in done.stderr
    assert desk.templates("HS2") == []
