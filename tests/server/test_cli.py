"""The installed ``campusgate server`` command: migrate and demo, on both databases."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from typer.testing import CliRunner

from server.cli import app as server_app
from server.core.config import get_settings
from server.main import app
from server.migrations import current_revision, head_revision
from server.models import (
    NATIONAL_ID_REGEX,
    FaceEnrollment,
    Guardian,
    SchoolClass,
    SchoolSession,
    Site,
    Student,
    StudentGuardian,
    User,
)
from tests.server.conftest import fresh

BIN = Path(sys.executable).parent


def campusgate(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = os.environ | {"CAMPUSGATE_SERVER__DATABASE_URL": database_url}
    return subprocess.run(
        [str(BIN / "campusgate"), "--log-level", "warning", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke ``campusgate server …`` in this process (quicker than the installed command) with
    the given database URL."""
    runner = CliRunner()

    def invoke(*args: str, database_url: str) -> Result:
        monkeypatch.setenv("CAMPUSGATE_SERVER__DATABASE_URL", database_url)
        get_settings.cache_clear()
        return runner.invoke(server_app, list(args))

    yield invoke
    get_settings.cache_clear()


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'campusgate.db'}"
    result = campusgate("server", "migrate", database_url=url)
    assert result.returncode == 0, result.stderr
    assert f"at revision {head_revision()}" in result.stderr


def test_a_bad_database_url_is_a_clear_error(in_process: Callable[..., Result]) -> None:
    result = in_process("migrate", database_url="mysql://root@localhost/school")
    assert result.exit_code == 2
    assert "unsupported database 'mysql'" in result.output


def test_demo_loads_a_vietnamese_school_once(
    engine: Engine, db: Session, db_url: str, in_process: Callable[..., Result]
) -> None:
    result = campusgate("server", "demo", database_url=db_url)
    assert result.returncode == 0, result.stderr
    assert "48 students" in result.stderr
    assert current_revision(engine) == head_revision()

    names = fresh(db).exec(select(Student.full_name)).all()
    assert len(names) == 48
    for name in names:
        assert name == unicodedata.normalize("NFC", name)
        assert len(name.split()) == 3
    assert any(c in "".join(names) for c in "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
    national_ids = db.exec(select(Student.national_id)).all()
    assert len(set(national_ids)) == 48
    assert all(re.fullmatch(NATIONAL_ID_REGEX, n) for n in national_ids)
    assert sorted(db.exec(select(SchoolClass.name)).all()) == [
        "10A1", "10A2", "11A1", "11A2", "12A1", "12A2",
    ]  # fmt: skip
    assert all(db.exec(select(SchoolClass.homeroom_teacher_id)).all())
    morning = db.exec(select(SchoolSession).where(SchoolSession.code == "morning")).one()
    assert (str(morning.start), str(morning.late_after), str(morning.absent_after)) == (
        "07:00:00",
        "07:01:00",
        "07:15:00",
    )
    assert db.exec(select(func.count()).select_from(StudentGuardian)).one() == 48
    assert all(g.phone.startswith("09") for g in db.exec(select(Guardian)))
    assert db.exec(select(Site.code)).all() == ["demo"]
    assert db.exec(select(func.count()).select_from(FaceEnrollment)).one() == 0
    assert all(u.password_hash is None for u in db.exec(select(User)))

    again = in_process("demo", database_url=db_url)
    assert again.exit_code == 1
    assert "already loaded" in again.output
    assert fresh(db).exec(select(func.count()).select_from(Student)).one() == 48


def test_the_health_check_answers() -> None:
    response = TestClient(app).get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_run_s_port_is_the_port_gallery_notices_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """``server run --port`` once served on one port while gates were told another."""
    from server.cli import http_overrides
    from server.faces import get_face_settings
    from server.gallery_publish import default_base_url

    monkeypatch.delenv("CAMPUSGATE_SERVER__HTTP__PORT", raising=False)
    monkeypatch.delenv("CAMPUSGATE_SERVER__FACES__PUBLIC_URL", raising=False)
    get_settings.cache_clear()
    get_face_settings.cache_clear()
    assert default_base_url() == "http://127.0.0.1:8000/api/v1"
    try:
        http_overrides(None, 9123)
        assert get_settings().http.port == 9123
        assert default_base_url() == "http://127.0.0.1:9123/api/v1"
    finally:
        os.environ.pop("CAMPUSGATE_SERVER__HTTP__PORT", None)
        get_settings.cache_clear()


def test_run_with_a_certificate_tells_gates_https(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Gallery notices must name the scheme the server speaks, or gates fetch in vain."""
    from server.cli import http_overrides
    from server.faces import get_face_settings
    from server.gallery_publish import default_base_url

    monkeypatch.delenv("CAMPUSGATE_SERVER__FACES__PUBLIC_URL", raising=False)
    get_face_settings.cache_clear()
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_text("certificate")
    key.write_text("key")
    names = ("PORT", "TLS_CERTFILE", "TLS_KEYFILE")
    try:
        http_overrides(None, 9443, cert, key)
        assert get_settings().http.tls == (cert, key)
        assert default_base_url() == "https://127.0.0.1:9443/api/v1"
    finally:
        for name in names:
            os.environ.pop(f"CAMPUSGATE_SERVER__HTTP__{name}", None)
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--tls-cert", "{cert}"], "set both http.tls_certfile and http.tls_keyfile, or neither"),
        (["--tls-cert", "{cert}", "--tls-key", "{missing}"], "http.tls_keyfile: no such file"),
    ],
)
def test_run_refuses_half_a_certificate_before_starting_anything(
    tmp_path: Path, options: list[str], said: str
) -> None:
    cert = tmp_path / "server.crt"
    cert.write_text("certificate")
    paths = {"cert": cert, "missing": tmp_path / "server.key"}
    database = tmp_path / "campusgate.db"
    ran = campusgate(
        "server",
        "run",
        *(option.format(**paths) for option in options),
        database_url=f"sqlite:///{database}",
    )
    assert ran.returncode == 2
    told = " ".join((ran.stdout + ran.stderr).split())  # rich wraps long lines
    assert "bad server settings" in told and said in told
    assert not database.exists()  # refused before migrating
