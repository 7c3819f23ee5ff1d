"""The API against each test database: a seeded school with a user of every role, and clients
signed in as each of them (bearer tokens; the auth tests sign in with cookies themselves).

argon2 is slow on purpose, so the tests hash with its cheapest parameters (:data:`FAST_HASHER`),
and every user shares the hash of :data:`PASSWORD`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from server import main
from server.api import security
from server.api.deps import get_engine
from server.api.routes.devices import gallery_key
from server.api.security import new_api_token, token_hash
from server.auth_models import ApiToken
from server.gallery_key import GalleryKey, load_or_create_key
from server.gallery_publish import shared_publisher
from server.models import (
    Guardian,
    GuardianRelationship,
    Role,
    SchoolClass,
    Student,
    StudentGuardian,
    User,
)
from tests.server.conftest import World, make_school

PASSWORD = "mật-khẩu-đủ-dài"


FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""argon2 with the cheapest parameters, so that signing in costs the tests almost nothing."""


@pytest.fixture(scope="session", autouse=True)
def fast_argon2() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", FAST_HASHER)
        yield


@pytest.fixture(scope="session")
def password_hash(fast_argon2: None) -> str:
    return security.hash_password(PASSWORD)


@dataclass
class Seed:
    """The test school (``world``: class 10A1 of ``world.teacher``, students HS1-HS3), a second
    class 10A2 of another teacher, and a user of every role. ``parent`` is a guardian of HS1
    only."""

    world: World
    admin: User
    teacher: User
    other_teacher: User
    other_class: SchoolClass
    other_students: list[Student]
    parent: User
    guardian: Guardian
    technician: User

    @property
    def students(self) -> list[Student]:
        return self.world.students


def _user(db: Session, username: str, role: Role, password_hash: str) -> User:
    user = User(username=username, full_name=username, role=role, password_hash=password_hash)
    db.add(user)
    db.flush()
    return user


@pytest.fixture
def seed(db: Session, password_hash: str) -> Seed:
    world = make_school(db)
    world.teacher.password_hash = password_hash
    db.add(world.teacher)
    other_teacher = _user(db, "teacher-b", Role.TEACHER, password_hash)
    other_class = SchoolClass(
        school_id=world.school.id,
        school_year_id=world.year.id,
        name="10A2",
        grade=10,
        homeroom_teacher_id=other_teacher.id,
    )
    db.add(other_class)
    db.flush()
    other_students = [
        Student(
            code=f"HB{n}",
            full_name=f"Học sinh B{n}",
            school_id=world.school.id,
            class_id=other_class.id,
        )
        for n in (1, 2)
    ]
    db.add_all(other_students)
    parent = _user(db, "parent-1", Role.PARENT, password_hash)
    guardian = Guardian(full_name="Trần Văn Bố", phone="0901234567", user_id=parent.id)
    db.add(guardian)
    db.flush()
    db.add(
        StudentGuardian(
            student_id=world.students[0].id,
            guardian_id=guardian.id,
            relationship=GuardianRelationship.FATHER,
            is_primary=True,
        )
    )
    seed = Seed(
        world=world,
        admin=_user(db, "admin", Role.ADMIN, password_hash),
        teacher=world.teacher,
        other_teacher=other_teacher,
        other_class=other_class,
        other_students=other_students,
        parent=parent,
        guardian=guardian,
        technician=_user(db, "tech-1", Role.TECHNICIAN, password_hash),
    )
    db.commit()
    return seed


@dataclass
class Publishes:
    """Stands in for the gallery publisher (which needs a model pack and a broker): records
    which schools' galleries the API asked to republish, and why."""

    calls: list[tuple[int, str]] = field(default_factory=list)

    def publish_school(self, db: Session, school_id: int, *, reason: str, actor_id=None) -> list:
        self.calls.append((school_id, reason))
        return []


@pytest.fixture
def publishes() -> Publishes:
    return Publishes()


@pytest.fixture(scope="session")
def gallery_signing_key(tmp_path_factory: pytest.TempPathFactory) -> GalleryKey:
    """A gallery key of the tests' own, so no test writes one into the server's data folder."""
    return load_or_create_key(tmp_path_factory.mktemp("gallery-key"))


@pytest.fixture
def app(engine: Engine, publishes: Publishes, gallery_signing_key: GalleryKey) -> Iterator[FastAPI]:
    """The server's application, on the test's database, with :class:`Publishes` for the
    gallery publisher."""
    main.app.dependency_overrides[get_engine] = lambda: engine
    main.app.dependency_overrides[shared_publisher] = lambda: publishes
    main.app.dependency_overrides[gallery_key] = lambda: gallery_signing_key
    yield main.app
    main.app.dependency_overrides.clear()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client with no credentials."""
    with TestClient(app) as test_client:
        yield test_client


def bearer_token(db: Session, user: User) -> str:
    """A fresh API token of ``user``, made directly in the database."""
    token = new_api_token()
    db.add(ApiToken(token_hash=token_hash(token), prefix=token[:8], name="test", user_id=user.id))
    db.commit()
    return token


class Clients:
    """``clients.admin``, ``clients.teacher``, …: a client authenticated as that seeded user."""

    def __init__(self, app: FastAPI, db: Session, seed: Seed) -> None:
        self._app, self._db, self._seed = app, db, seed
        self._made: dict[str, TestClient] = {}

    def __getattr__(self, name: str) -> TestClient:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._made:
            user = getattr(self._seed, name)
            headers = {"Authorization": f"Bearer {bearer_token(self._db, user)}"}
            self._made[name] = TestClient(self._app, headers=headers)
        return self._made[name]


@pytest.fixture
def clients(app: FastAPI, db: Session, seed: Seed) -> Clients:
    return Clients(app, db, seed)
