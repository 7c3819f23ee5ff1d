"""The web pages without a browser (both databases): who is sent where, the language switch,
what each role may open, the roster endpoints' refusals, the live roll's change detection, and
a catalogue that has every string in both languages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from server.api.deps import get_engine
from server.api.security import hash_password
from server.attendance import set_status_manually
from server.main import app
from server.models import AttendanceStatus, Role, User
from server.web.i18n import EN, VI
from server.web.live_roll import RollDiff, roll_json
from server.web.roll_watch import class_day_signature
from tests.server.api.conftest import fast_argon2  # noqa: F401  (cheap hashing)
from tests.server.conftest import TERM, World

PASSWORD = "mat-khau-trang-web"
WEB = Path(__file__).resolve().parents[2] / "server" / "web"
SCHOOL_DAY = date(2025, 10, 6)  # a Monday inside TERM
assert TERM[0] <= SCHOOL_DAY <= TERM[1]


@pytest.fixture
def people(db: Session, world: World, fast_argon2: None) -> dict[str, User]:  # noqa: F811
    hashed = hash_password(PASSWORD)
    world.teacher.password_hash = hashed
    users = {"teacher": world.teacher}
    for role in (Role.ADMIN, Role.PARENT, Role.TECHNICIAN):
        users[role.value] = User(
            username=f"web-{role.value}", full_name=role.value, role=role, password_hash=hashed
        )
    db.add_all(users.values())
    db.commit()
    return users


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client
    app.dependency_overrides.pop(get_engine, None)


def signed_in(client: TestClient, user: User) -> str:
    """Sign ``client`` in as ``user``; the session's CSRF token."""
    answer = client.post(
        "/api/v1/auth/login", json={"username": user.username, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["csrf_token"]


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in_and_back(client: TestClient) -> None:
    answer = client.get("/teacher/classes/1?date=2025-10-06")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fteacher%2Fclasses%2F1%3Fdate%3D2025-10-06"
    page = client.get("/login?next=/teacher")
    assert page.status_code == 200
    assert 'data-next="/teacher"' in page.text and "Đăng nhập" in page.text


@pytest.mark.parametrize(
    ("role", "home"),
    [
        ("admin", "/admin"),
        ("teacher", "/teacher"),
        ("parent", "/parent"),
        ("technician", "/admin/devices"),
    ],
)
def test_the_landing_page_sends_each_role_home(
    client: TestClient, people: dict[str, User], role: str, home: str
) -> None:
    signed_in(client, people[role])
    answer = client.get("/")
    assert (answer.status_code, answer.headers["location"]) == (303, home)
    assert client.get(home).status_code == 200


def test_the_language_switch_is_remembered_and_stays_on_this_site(client: TestClient) -> None:
    answer = client.get("/lang/en?next=/login")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert client.cookies["cg_lang"] == "en"
    page = client.get("/login")
    assert '<html lang="en">' in page.text and "Sign in" in page.text
    assert client.get("/lang/en?next=//evil.example/x").headers["location"] == "/"
    unknown = client.get("/lang/fr")
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "language fr not found / không có ngôn ngữ này"


def test_each_role_opens_only_its_own_pages(
    client: TestClient, db: Session, people: dict[str, User], world: World
) -> None:
    signed_in(client, people["parent"])
    assert client.get("/teacher").status_code == 403
    assert client.get("/admin").status_code == 403
    signed_in(client, people["teacher"])
    assert client.get(f"/teacher/classes/{world.school_class.id}").status_code == 200
    assert client.get("/admin/import").status_code == 403
    world.school_class.homeroom_teacher_id = None
    db.add(world.school_class)
    db.commit()
    refused = client.get(f"/teacher/classes/{world.school_class.id}")
    assert refused.status_code == 403
    assert client.get(f"/web/api/classes/{world.school_class.id}/roll/stream").status_code == 403


def test_the_roster_endpoints_refuse_what_they_cannot_use(
    client: TestClient, people: dict[str, User], world: World
) -> None:
    csrf = signed_in(client, people["admin"])
    roster = {"file": ("r.csv", b"code,full_name\nHS9,Lan\n", "text/csv")}
    school = {"school_id": str(world.school.id)}
    no_csrf = client.post("/web/api/roster/preview", data=school, files=roster)
    assert no_csrf.status_code == 403
    headers = {"X-CSRF-Token": csrf}
    no_file = client.post(
        "/web/api/roster/preview",
        data=school,
        headers=headers,
        files={"other": ("x", b"", "text/plain")},
    )
    assert no_file.status_code == 422
    unknown = client.post(
        "/web/api/roster/preview", data={"school_id": "999"}, files=roster, headers=headers
    )
    assert unknown.status_code == 404
    empty = client.post(
        "/web/api/roster/import",
        data=school,
        headers=headers,
        files={"file": ("r.csv", b"full_name\nAn\n", "text/csv")},
    )
    assert empty.status_code == 422
    assert empty.json()["detail"] == "thiếu cột code / missing column(s) code"
    ok = client.post("/web/api/roster/preview", data=school, files=roster, headers=headers)
    assert ok.status_code == 200 and ok.json()["ok"] is True


def test_the_live_roll_sees_a_change_made_by_another_connection(
    engine: Engine, world: World
) -> None:
    student = world.students[1]
    with Session(engine) as reader:
        before = class_day_signature(reader, world.school_class.id, SCHOOL_DAY)
        diff = RollDiff()
        diff.snapshot(roll_json(reader, world.school_class, SCHOOL_DAY))
        assert diff.changes(roll_json(reader, world.school_class, SCHOOL_DAY)) is None
    with Session(engine) as writer:
        set_status_manually(
            writer,
            student_id=student.id,
            day=SCHOOL_DAY,
            session_id=world.morning.id,
            status=AttendanceStatus.EXCUSED,
            user_id=world.teacher.id,
            note="ốm",
        )
        writer.commit()
    with Session(engine) as reader:
        assert class_day_signature(reader, world.school_class.id, SCHOOL_DAY) != before
        update = diff.changes(roll_json(reader, world.school_class, SCHOOL_DAY))
    assert update is not None
    [changed] = update["students"]
    assert changed["student_id"] == student.id
    assert changed["marks"][0]["status"] == "excused"
    assert update["totals"]["morning"]["excused"] == 1 and update["removed"] == []


def test_both_languages_have_every_string_the_pages_use() -> None:
    assert VI.keys() == EN.keys()
    assert all(VI.values()) and all(EN.values())
    used = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("static/*.js")]:
        text = path.read_text()
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""", text))
        used |= set(re.findall(r"""\bt\(`([a-z_]+(?:\.[a-z_]+)+)`\)""", text))
    assert used, "the pattern found no strings at all"
    assert used <= VI.keys(), f"not in the catalogue: {sorted(used - VI.keys())}"
