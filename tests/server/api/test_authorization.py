"""Who may do what: admin everything; teacher their homeroom classes (another class: 403);
parent their own children (another child: 404, so ids do not reveal who exists); technician
devices only (anything else: 403)."""

from __future__ import annotations

from tests.server.api.conftest import Clients, Seed
from tests.server.api.gates import MONDAY

# (role, method, path, expected status); {child} is HS1 (10A1, the parent's child), {classmate}
# HS2 (10A1, not the parent's), {other} HB1 (10A2, another teacher's class).
MATRIX = [
    ("admin", "GET", "/students/{child}", 200),
    ("teacher", "GET", "/students/{child}", 200),
    ("parent", "GET", "/students/{child}", 200),
    ("technician", "GET", "/students/{child}", 403),
    ("teacher", "GET", "/students/{classmate}", 200),
    ("parent", "GET", "/students/{classmate}", 404),
    ("admin", "GET", "/students/{other}", 200),
    ("teacher", "GET", "/students/{other}", 403),
    ("parent", "GET", "/students/{other}", 404),
    ("parent", "GET", "/students/999999", 404),
    ("teacher", "GET", "/students/999999", 404),
    ("teacher", "GET", "/students/{other}/history", 403),
    ("parent", "GET", "/students/{other}/history", 404),
    ("parent", "GET", "/students/{child}/history", 200),
    ("parent", "GET", "/students/{child}/export", 200),
    ("parent", "GET", "/students/{other}/export", 404),
    ("teacher", "GET", "/students/{child}/export", 403),
    ("parent", "GET", "/students/{other}/guardians", 404),
    ("admin", "GET", "/classes/{own_class}/roll", 200),
    ("teacher", "GET", "/classes/{own_class}/roll", 200),
    ("teacher", "GET", "/classes/{other_class}/roll", 403),
    ("teacher", "GET", "/classes/{other_class}", 403),
    ("teacher", "GET", "/classes/{other_class}/students", 403),
    ("parent", "GET", "/classes/{own_class}/roll", 403),
    ("technician", "GET", "/classes/{own_class}/roll", 403),
    ("teacher", "GET", "/reports/attendance.csv?class_id={other_class}", 403),
    ("teacher", "GET", "/reports/attendance.csv?school_id={school}", 403),
    ("teacher", "GET", "/reports/attendance.csv?class_id={own_class}", 200),
    ("parent", "GET", "/reports/attendance.csv?class_id={own_class}", 403),
    ("admin", "GET", "/devices", 200),
    ("technician", "GET", "/devices", 200),
    ("technician", "GET", "/devices/{device}", 200),
    ("teacher", "GET", "/devices", 403),
    ("parent", "GET", "/devices", 403),
    ("technician", "GET", "/schools", 403),
    ("technician", "GET", "/students", 403),
    ("technician", "GET", "/users", 403),
    ("technician", "GET", "/leave-requests", 403),
    ("technician", "GET", "/cards", 403),
    ("parent", "GET", "/schools", 200),
    ("teacher", "GET", "/users", 403),
    ("parent", "GET", "/guardians", 403),
    ("teacher", "GET", "/cards", 403),
    ("teacher", "POST", "/schools", 403),
    ("teacher", "POST", "/students/{other}/erase", 403),
    ("parent", "PUT", "/students/{child}/attendance/{monday}/{morning}", 403),
    ("teacher", "PUT", "/students/{other}/attendance/{monday}/{morning}", 403),
    ("teacher", "PUT", "/students/{child}/attendance/{monday}/{morning}", 200),
]


def test_each_role_gets_what_the_matrix_says(clients: Clients, seed: Seed) -> None:
    """Every row of MATRIX against one seeded school (one test, so the database is seeded once)."""
    ids = {
        "child": seed.students[0].id,
        "classmate": seed.students[1].id,
        "other": seed.other_students[0].id,
        "own_class": seed.world.school_class.id,
        "other_class": seed.other_class.id,
        "school": seed.world.school.id,
        "device": seed.world.devices["gate-1"].id,
        "monday": MONDAY.isoformat(),
        "morning": seed.world.morning.id,
    }
    bodies = {"PUT": {"status": "excused", "note": "ốm"}, "POST": {"name": "Trường X"}}
    wrong = []
    for role, method, path, expected in MATRIX:
        client = getattr(clients, role)
        response = client.request(method, "/api/v1" + path.format(**ids), json=bodies.get(method))
        if response.status_code != expected:
            wrong.append(f"{role} {method} {path}: {response.status_code}, not {expected}")
    assert wrong == []


def test_a_teachers_student_list_holds_only_their_class(clients: Clients, seed: Seed) -> None:
    codes = {s["code"] for s in clients.teacher.get("/api/v1/students").json()}
    assert codes == {"HS1", "HS2", "HS3"}


def test_a_parents_student_list_holds_only_their_children(clients: Clients, seed: Seed) -> None:
    assert [s["code"] for s in clients.parent.get("/api/v1/students").json()] == ["HS1"]


def test_a_teacher_lists_only_their_classes(clients: Clients, seed: Seed) -> None:
    assert [c["name"] for c in clients.teacher.get("/api/v1/classes").json()] == ["10A1"]
    assert len(clients.admin.get("/api/v1/classes").json()) == 2
