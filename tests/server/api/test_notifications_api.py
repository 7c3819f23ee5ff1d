"""The notification routes over real HTTP on each database: who may read the delivery log, a
parent's Web Push subscriptions and preferences (validated, audited, another's child 404), and a
school's switches, checked against what the outbox then writes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from py_vapid import Vapid
from sqlmodel import Session, select

from server.api.routes.notifications import get_notify_settings
from server.models import AuditLog, Guardian, GuardianRelationship, Role, StudentGuardian
from server.notify.models import NotificationOptOut, NotificationPreference, PushSubscription
from server.notify.opt_out import OptOut, apply_opt_out, opt_out_token
from server.notify.outbox import AttendanceChange, enqueue_for_changes
from server.notify.settings import NotifySection
from server.notify.templates import MessageKind
from tests.server.api.conftest import Clients, Seed, _user, bearer_token
from tests.server.conftest import fresh
from tests.server.notify.family import NOW, SETTINGS, add_guardian, outbox

SECRET = SETTINGS.opt_out_secret
assert SECRET is not None

API = "/api/v1"
ESMS = {"kind": "esms", "api_key": "k", "secret_key": "s", "brandname": "TRUONG-A"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def vapid() -> tuple[str, str]:
    """A VAPID key pair: (private key as the settings take it, public key as browsers want it)."""
    key = Vapid()
    key.generate_keys()
    private = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    public = key.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(private), b64url(public)


@pytest.fixture
def notify_settings(app: FastAPI, vapid: tuple[str, str]) -> Iterator[NotifySection]:
    """The school has a push channel and an SMS channel; the app uses these settings."""
    push = {"kind": "webpush", "vapid_private_key": vapid[0], "vapid_subject": "mailto:a@b.vn"}
    section = SETTINGS.model_copy(
        update={"channels": NotifySection(channels={"push": push, "sms": ESMS}).channels}
    )
    app.dependency_overrides[get_notify_settings] = lambda: section
    yield section


def browser_subscription(endpoint: str) -> dict:
    """What a browser's ``PushSubscription.toJSON()`` gives."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    keys = {"p256dh": b64url(point), "auth": b64url(os.urandom(16))}
    return {"endpoint": endpoint, "expirationTime": None, "keys": keys}


def arrivals(db: Session, seed: Seed, kind: MessageKind = MessageKind.ARRIVED, days: int = 0):
    """Every seeded student of 10A1 had ``kind`` happen ``days`` after NOW; the outbox wrote
    what the preferences and switches allow."""
    at = NOW + timedelta(days=days)
    changes = [AttendanceChange(s.id, kind, at) for s in seed.students]
    enqueue_for_changes(fresh(db), changes, now=at)
    db.commit()


def second_parent(db: Session, seed: Seed) -> tuple[Guardian, str]:
    """Another parent, of HS2, and their bearer token."""
    user = _user(db, "parent-2", Role.PARENT, seed.admin.password_hash or "")
    guardian = Guardian(full_name="Lê Thị Hoa", user_id=user.id)
    db.add(guardian)
    db.flush()
    db.add(
        StudentGuardian(
            student_id=seed.students[1].id,
            guardian_id=guardian.id,
            relationship=GuardianRelationship.MOTHER,
        )
    )
    db.commit()
    return guardian, bearer_token(db, user)


def audit_rows(db: Session, action: str) -> list[AuditLog]:
    return list(fresh(db).exec(select(AuditLog).where(AuditLog.action == action)))


# --- the delivery log --------------------------------------------------------------------------


def test_only_admins_and_parents_read_the_delivery_log(clients: Clients) -> None:
    for path in ("/notifications", "/notifications/counts"):
        assert clients.teacher.get(API + path).status_code == 403
        assert clients.technician.get(API + path).status_code == 403
        assert clients.admin.get(API + path).status_code == 200
        assert clients.parent.get(API + path).status_code == 200


def test_a_parent_sees_only_the_messages_addressed_to_them(
    clients: Clients, seed: Seed, db: Session
) -> None:
    other, _ = second_parent(db, seed)
    add_guardian(db, seed.students[2], "Phạm Văn Ba", channels=("sms",))
    arrivals(db, seed)

    everything = clients.admin.get(f"{API}/notifications").json()
    assert len(everything) == 3
    mine = clients.parent.get(f"{API}/notifications").json()
    assert [e["guardian_id"] for e in mine] == [seed.guardian.id]
    assert mine[0]["student_name"] == "Học sinh 1" and mine[0]["channel"] == "push"
    asked_for_another = clients.parent.get(f"{API}/notifications?guardian_id={other.id}")
    assert asked_for_another.status_code == 200 and asked_for_another.json() == []

    counts = clients.parent.get(f"{API}/notifications/counts").json()
    assert counts["total"] == 1 and counts["by_status"]["queued"] == 1
    assert counts["by_status"]["failed"] == 0
    all_counts = clients.admin.get(f"{API}/notifications/counts?channel=push").json()
    assert all_counts["total"] == 2
    read = audit_rows(db, "student.read")
    assert {(r.actor_id, r.student_id) for r in read if r.detail["what"] == "notifications"} == {
        (seed.admin.id, s.id) for s in seed.students
    } | {(seed.parent.id, seed.students[0].id)}


def test_delivery_log_pages_stay_stable_while_messages_arrive(
    clients: Clients, seed: Seed, db: Session
) -> None:
    for day in range(2):
        arrivals(db, seed, days=day)  # the seeded parent hears of HS1
    add_guardian(db, seed.students[1], "Phạm Văn Ba", channels=("sms",))
    for day in range(2):
        arrivals(db, seed, MessageKind.LEFT, days=day)
    everything = [e["id"] for e in clients.admin.get(f"{API}/notifications").json()]
    assert len(everything) == 6 and everything == sorted(everything, reverse=True)

    first = clients.admin.get(f"{API}/notifications?limit=4").json()
    arrivals(db, seed, MessageKind.LATE, days=3)  # new messages between two pages
    last = first[-1]["id"]
    rest = clients.admin.get(f"{API}/notifications?limit=4&before_id={last}").json()
    assert [e["id"] for e in first + rest] == everything
    assert clients.admin.get(f"{API}/notifications?limit=0").status_code == 422
    assert clients.admin.get(f"{API}/notifications?status=lost").status_code == 422


# --- Web Push ------------------------------------------------------------------------------------


def test_the_vapid_public_key_is_the_configured_channels(
    clients: Clients, app: FastAPI, notify_settings: NotifySection, vapid: tuple[str, str]
) -> None:
    for who in (clients.parent, clients.teacher):
        answer = who.get(f"{API}/notify/vapid-public-key")
        assert answer.status_code == 200
        assert answer.json() == {"public_key": vapid[1]}
    with TestClient(app) as anonymous:
        assert anonymous.get(f"{API}/notify/vapid-public-key").status_code == 401

    app.dependency_overrides[get_notify_settings] = lambda: SETTINGS  # no channels at all
    missing = clients.parent.get(f"{API}/notify/vapid-public-key")
    assert missing.status_code == 404
    assert "Web Push" in missing.json()["detail"]


def test_a_parents_push_subscription_is_stored_replaced_and_deleted(
    clients: Clients, seed: Seed, db: Session, app: FastAPI
) -> None:
    endpoint = "https://fcm.googleapis.com/fcm/send/abc123"
    first = browser_subscription(endpoint)
    made = clients.parent.post(f"{API}/me/push-subscriptions", json=first)
    assert made.status_code == 201, made.text
    assert made.json()["endpoint"] == endpoint
    again = browser_subscription(endpoint)  # the browser renewed its keys
    assert clients.parent.post(f"{API}/me/push-subscriptions", json=again).status_code == 201
    [row] = fresh(db).exec(select(PushSubscription)).all()
    assert (row.guardian_id, row.p256dh, row.auth) == (
        seed.guardian.id,
        again["keys"]["p256dh"],
        again["keys"]["auth"],
    )

    _, token = second_parent(db, seed)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as other:
        refused = other.delete(f"{API}/me/push-subscriptions", params={"endpoint": endpoint})
        assert refused.status_code == 404
    assert len(fresh(db).exec(select(PushSubscription)).all()) == 1

    gone = clients.parent.delete(f"{API}/me/push-subscriptions", params={"endpoint": endpoint})
    assert gone.status_code == 204
    assert fresh(db).exec(select(PushSubscription)).all() == []
    twice = clients.parent.delete(f"{API}/me/push-subscriptions", params={"endpoint": endpoint})
    assert twice.status_code == 404


def test_a_bad_push_subscription_is_refused_and_nothing_stored(
    clients: Clients, db: Session
) -> None:
    good = browser_subscription("https://push.example/ok")
    assert clients.teacher.post(f"{API}/me/push-subscriptions", json=good).status_code == 403
    short_key = good | {"keys": good["keys"] | {"p256dh": good["keys"]["p256dh"][:40]}}
    short_auth = good | {"keys": good["keys"] | {"auth": b64url(os.urandom(12))}}
    not_base64 = good | {"keys": good["keys"] | {"auth": "!" * 22}}
    for bad, reason in [
        (good | {"endpoint": "http://push.example/x"}, "https://"),
        (good | {"endpoint": "ftp://push.example/x"}, "https://"),
        (good | {"endpoint": "not a url"}, "URL"),
        (short_key, "65"),
        (short_auth, "16"),
        (not_base64, "base64url"),
        ({"endpoint": good["endpoint"]}, "keys"),
        (good | {"extra": 1}, "extra"),
    ]:
        answer = clients.parent.post(f"{API}/me/push-subscriptions", json=bad)
        assert answer.status_code == 422, bad
        assert reason in answer.text
    assert fresh(db).exec(select(PushSubscription)).all() == []
    loopback = browser_subscription("http://127.0.0.1:8123/push/phone")
    assert clients.parent.post(f"{API}/me/push-subscriptions", json=loopback).status_code == 201


# --- a parent's preferences ----------------------------------------------------------------------


def test_a_parent_reads_and_saves_their_childs_preferences(
    clients: Clients, seed: Seed, db: Session, notify_settings: NotifySection
) -> None:
    child = seed.students[0]
    db.add(
        StudentGuardian(
            student_id=seed.students[2].id,
            guardian_id=seed.guardian.id,
            relationship=GuardianRelationship.FATHER,
        )
    )
    db.commit()
    clients.admin.put(
        f"{API}/schools/{seed.world.school.id}/notification-policy",
        json={"disabled_kinds": ["left"]},
    )
    shown = clients.parent.get(f"{API}/me/notification-preferences").json()["children"]
    assert [c["student_code"] for c in shown] == ["HS1", "HS3"]
    first = shown[0]
    assert first["student_id"] == child.id and first["class_name"] == "10A1"
    assert first["channels"] == ["push", "sms"]
    assert first["kinds"] == [kind.value for kind in MessageKind]
    assert first["quiet_hours"] is None and first["digest"] is False
    assert first["available_channels"] == ["push", "sms"]
    assert "left" not in first["allowed_kinds"] and "arrived" in first["allowed_kinds"]

    choice = {
        "channels": ["sms", "push"],
        "kinds": ["absent", "late"],
        "quiet_hours": {"start": "21:30", "end": "06:30"},
        "digest": False,
        "locale": "en",
    }
    saved = clients.parent.put(f"{API}/me/notification-preferences/{child.id}", json=choice)
    assert saved.status_code == 200, saved.text
    again = clients.parent.get(f"{API}/me/notification-preferences").json()["children"]
    assert again[0] == saved.json()
    assert saved.json()["channels"] == ["sms", "push"]
    assert saved.json()["kinds"] == ["late", "absent"]
    assert saved.json()["quiet_hours"] == {"start": "21:30:00", "end": "06:30:00"}
    assert again[1]["kinds"] == ["late", "absent"]  # the parent's, for every child
    assert again[1]["channels"] == ["push", "sms"]  # channels are per child

    [entry] = audit_rows(db, "notification_preferences.update")
    assert (entry.actor_id, entry.student_id) == (seed.parent.id, child.id)
    assert entry.detail["before"]["channels"] == ["push", "sms"]
    assert entry.detail["after"]["kinds"] == ["late", "absent"]

    arrivals(db, seed)  # the parent no longer wants "arrived"
    assert [row.guardian_id for row in outbox(db)] == []
    arrivals(db, seed, MessageKind.LATE)
    late = {(row.student_id, row.channel, row.locale) for row in outbox(db)}
    assert late == {(child.id, "sms", "en"), (seed.students[2].id, "push", "en")}


def test_bad_preferences_are_refused_and_change_nothing(
    clients: Clients, seed: Seed, db: Session, notify_settings: NotifySection
) -> None:
    child = seed.students[0].id
    before = clients.parent.get(f"{API}/me/notification-preferences").json()
    good = {"channels": ["push"], "kinds": ["arrived"]}
    for bad, reason in [
        (good | {"channels": ["push", "push"]}, "twice"),
        (good | {"channels": ["zalo"]}, "zalo"),
        (good | {"kinds": ["arrived", "gossip"]}, "kinds"),
        (good | {"quiet_hours": {"start": "22:00", "end": "22:00"}}, "same time"),
        (good | {"quiet_hours": {"start": "22:00+07:00", "end": "06:00+07:00"}}, "zone"),
        (good | {"digest_at": "25:00"}, "digest_at"),
        (good | {"locale": "fr"}, "locale"),
        (good | {"colour": "blue"}, "colour"),
        ({"kinds": ["arrived"]}, "channels"),
    ]:
        answer = clients.parent.put(f"{API}/me/notification-preferences/{child}", json=bad)
        assert answer.status_code == 422, bad
        assert reason in answer.text, answer.text
    assert clients.parent.get(f"{API}/me/notification-preferences").json() == before
    assert fresh(db).exec(select(NotificationPreference)).all() == []
    assert audit_rows(db, "notification_preferences.update") == []


def test_another_parents_child_is_not_found(
    clients: Clients, seed: Seed, db: Session, notify_settings: NotifySection
) -> None:
    body = {"channels": ["push"]}
    for student in (seed.students[1], seed.other_students[0]):
        answer = clients.parent.put(f"{API}/me/notification-preferences/{student.id}", json=body)
        assert answer.status_code == 404
    unknown = clients.parent.put(f"{API}/me/notification-preferences/999999", json=body)
    assert unknown.status_code == 404
    assert clients.teacher.get(f"{API}/me/notification-preferences").status_code == 403
    assert (
        clients.admin.put(
            f"{API}/me/notification-preferences/{seed.students[0].id}", json=body
        ).status_code
        == 403
    )
    assert audit_rows(db, "notification_preferences.update") == []


# --- opt-outs ------------------------------------------------------------------------------------


def test_a_parent_or_an_admin_lifts_an_opt_out_and_the_messages_come_again(
    clients: Clients, seed: Seed, db: Session, notify_settings: NotifySection
) -> None:
    guardian = seed.guardian.id  # wants push first, then SMS
    for kind in ("arrived", "all"):
        apply_opt_out(db, SECRET, opt_out_token(SECRET, OptOut(guardian, kind, "push")))
    db.commit()
    arrivals(db, seed)
    assert [row.channel for row in outbox(db)] == ["sms"]
    shown = clients.parent.get(f"{API}/me/notification-preferences").json()["children"][0]
    assert shown["opted_out"] == [
        {"channel": "push", "kind": "all"},
        {"channel": "push", "kind": "arrived"},
    ]
    admin_path = f"{API}/guardians/{guardian}/notification-opt-outs"
    assert clients.admin.get(admin_path).json() == shown["opted_out"]

    # The parent takes back "every kind", an admin "arrived" on the parent's word.
    assert clients.parent.delete(f"{API}/me/notification-opt-outs/push/all").status_code == 204
    assert clients.admin.delete(f"{admin_path}/push/arrived").status_code == 204
    assert clients.admin.get(admin_path).json() == []
    assert (
        clients.parent.get(f"{API}/me/notification-preferences").json()["children"][0]["opted_out"]
        == []
    )
    arrivals(db, seed, days=1)
    assert [row.channel for row in outbox(db)] == ["sms", "push"]
    entries = audit_rows(db, "notification_opt_out.delete")
    assert [(e.actor_id, e.detail) for e in entries] == [
        (seed.parent.id, {"channel": "push", "kind": "all"}),
        (seed.admin.id, {"channel": "push", "kind": "arrived"}),
    ]


def test_lifting_an_opt_out_nobody_made_or_someone_elses_changes_nothing(
    clients: Clients, seed: Seed, db: Session, notify_settings: NotifySection
) -> None:
    other, other_token = second_parent(db, seed)
    apply_opt_out(db, SECRET, opt_out_token(SECRET, OptOut(other.id, "late", "sms")))
    db.commit()
    # The signed-in parent has no such opt-out: their own list is all they can touch.
    assert clients.parent.delete(f"{API}/me/notification-opt-outs/sms/late").status_code == 404
    path = f"{API}/guardians/{other.id}/notification-opt-outs"
    for client in (clients.parent, clients.teacher, clients.technician):
        assert client.get(path).status_code == 403
        assert client.delete(f"{path}/sms/late").status_code == 403
    assert clients.admin.delete(f"{path}/sms/left").status_code == 404
    assert clients.admin.get(f"{API}/guardians/999999/notification-opt-outs").status_code == 404
    assert clients.admin.delete(f"{path}/{'x' * 33}/late").status_code == 422
    assert clients.admin.get(path).json() == [{"channel": "sms", "kind": "late"}]
    assert fresh(db).exec(select(NotificationOptOut)).one().guardian_id == other.id
    assert audit_rows(db, "notification_opt_out.delete") == []
    with TestClient(clients.parent.app, headers={"Authorization": f"Bearer {other_token}"}) as own:
        assert own.delete(f"{API}/me/notification-opt-outs/sms/late").status_code == 204
    assert fresh(db).exec(select(NotificationOptOut)).all() == []


# --- a school's switches -------------------------------------------------------------------------


def test_a_school_switch_stops_new_messages_of_that_kind(
    clients: Clients, seed: Seed, db: Session
) -> None:
    school = seed.world.school.id
    path = f"{API}/schools/{school}/notification-policy"
    assert clients.admin.get(path).json()["disabled_kinds"] == []
    assert clients.teacher.put(path, json={"disabled_kinds": ["left"]}).status_code == 403
    assert clients.parent.get(path).status_code == 403
    assert clients.admin.put(path, json={"disabled_kinds": ["gossip"]}).status_code == 422
    assert clients.admin.get(f"{API}/schools/999999/notification-policy").status_code == 404

    switched = clients.admin.put(path, json={"disabled_kinds": ["left", "arrived"]})
    assert switched.status_code == 200
    assert switched.json()["disabled_kinds"] == ["arrived", "left"]
    assert "late" in switched.json()["allowed_kinds"]
    assert clients.admin.get(path).json() == switched.json()
    [entry] = audit_rows(db, "notification_policy.update")
    assert entry.actor_id == seed.admin.id
    assert entry.detail == {
        "before": {"disabled_kinds": []},
        "after": {"disabled_kinds": ["arrived", "left"]},
    }

    arrivals(db, seed)
    arrivals(db, seed, MessageKind.LEFT)
    assert outbox(db) == []
    arrivals(db, seed, MessageKind.LATE)
    assert [row.kind for row in outbox(db)] == ["late"]

    assert clients.admin.put(path, json={"disabled_kinds": []}).status_code == 200
    arrivals(db, seed, days=1)
    assert [row.kind for row in outbox(db)] == ["late", "arrived"]
