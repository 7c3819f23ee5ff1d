"""The notification system over HTTP: the delivery log, a parent's Web Push subscriptions and
preferences, and a school's switches.

Who may do what: admins read the whole delivery log and set schools' switches; a parent reads the
log of messages addressed to them and keeps their own subscriptions and preferences (another
parent's child is 404, as everywhere); teachers and technicians have no part in it. Changes to
preferences and switches are audited in the change's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.encoders import jsonable_encoder
from py_vapid import Vapid, b64urlencode
from sqlalchemy import delete
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from server import audit
from server.api import crud
from server.api.deps import (
    AdminUser,
    CurrentUser,
    IdPath,
    SessionDep,
    audit_read,
    client_ip,
    not_found,
    require_roles,
)
from server.api.schemas.common import MAX_ID
from server.api.schemas.notifications import (
    ChildNotificationPreferences,
    DeliveryCounts,
    DeliveryLogEntry,
    DeliveryLogFilter,
    DeliveryLogPage,
    MyNotificationPreferences,
    NotificationPolicyPublic,
    NotificationPolicySet,
    NotificationPreferencesSet,
    OptedOut,
    PushSubscriptionIn,
    PushSubscriptionPublic,
    VapidPublicKey,
)
from server.core.config import get_settings
from server.models import Guardian, Role, School, SchoolClass, Student, StudentGuardian, User
from server.notify.channels import WebPushConfig
from server.notify.delivery_log import DeliveryLogQuery, delivery_counts, delivery_log
from server.notify.models import (
    NotificationOptOut,
    NotificationPolicy,
    NotificationPreference,
    NotificationStatus,
    PushSubscription,
)
from server.notify.opt_out import lift_opt_out
from server.notify.preferences import QuietHours
from server.notify.push_subscriptions import subscribe
from server.notify.settings import NotifySection
from server.notify.templates import MessageKind

router = APIRouter(tags=["notifications"])

ParentUser = Annotated[User, Depends(require_roles(Role.PARENT))]
LogReader = Annotated[User, Depends(require_roles(Role.ADMIN, Role.PARENT))]
USER_AGENT_MAX = 300


def get_notify_settings() -> NotifySection:
    """The server's notification settings; tests override this dependency with their own."""
    return get_settings().notify


NotifySettingsDep = Annotated[NotifySection, Depends(get_notify_settings)]


def channels_of(settings: NotifySection, school_id: int) -> Mapping[str, Any]:
    """The channels configured for ``school_id``: its own if it has any, else the shared ones."""
    return settings.school_channels.get(school_id, settings.channels)


def in_kind_order(kinds: Iterable[str]) -> list[MessageKind]:
    """``kinds`` (unknown ones dropped) in the order :class:`MessageKind` declares them."""
    wanted = set(kinds)
    return [kind for kind in MessageKind if kind.value in wanted]


def own_guardian(db: Session, user: User) -> Guardian | None:
    """The guardian record ``user`` signs in as (at most one: ``Guardian.user_id`` is unique)."""
    return db.exec(select(Guardian).where(Guardian.user_id == user.id)).first()


def _guardian_or_404(db: Session, user: User) -> Guardian:
    guardian = own_guardian(db, user)
    if guardian is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "tài khoản chưa gắn với phụ huynh nào / this account is not linked to a guardian",
        )
    return guardian


# --- the delivery log --------------------------------------------------------------------------


def _log_query(db: Session, user: User, page: DeliveryLogFilter) -> DeliveryLogQuery | None:
    """The delivery log query ``user`` may run: an admin's as asked, a parent's narrowed to their
    own guardian record; None when the parent asked for another guardian's (nothing to show)."""
    asked = page.model_dump()
    if user.role == Role.PARENT:
        guardian = own_guardian(db, user)
        if guardian is None or page.guardian_id not in (None, guardian.id):
            return None
        asked["guardian_id"] = guardian.id
    return DeliveryLogQuery.model_validate(asked)


@router.get("/notifications")
def list_notifications(
    user: LogReader,
    db: SessionDep,
    request: Request,
    page: Annotated[DeliveryLogPage, Query()],
) -> list[DeliveryLogEntry]:
    """Messages matching the filters, newest first: an admin sees all, a parent only those
    addressed to them. The texts name children, so the read is audited per child."""
    query = _log_query(db, user, page)
    if query is None:
        return []
    entries = delivery_log(db, query)
    audit_read(db, user, [entry.student_id for entry in entries], "notifications", request=request)
    return entries


@router.get("/notifications/counts")
def count_notifications(
    user: LogReader, db: SessionDep, filters: Annotated[DeliveryLogFilter, Query()]
) -> DeliveryCounts:
    """How many messages matching the filters are in each status."""
    query = _log_query(db, user, filters)
    counted = delivery_counts(db, query) if query is not None else {}
    by_status = {status: counted.get(status, 0) for status in NotificationStatus}
    return DeliveryCounts(by_status=by_status, total=sum(by_status.values()))


# --- Web Push ------------------------------------------------------------------------------------


def _children_schools(db: Session, user: User) -> list[int]:
    return list(
        db.exec(
            select(Student.school_id)
            .join(StudentGuardian, col(StudentGuardian.student_id) == Student.id)
            .join(Guardian, col(Guardian.id) == StudentGuardian.guardian_id)
            .where(Guardian.user_id == user.id)
            .distinct()
            .order_by(col(Student.school_id))
        )
    )


def _webpush_config(configs: Mapping[str, Any]) -> WebPushConfig | None:
    return next((c for c in configs.values() if isinstance(c, WebPushConfig)), None)


@router.get(
    "/notify/vapid-public-key",
    responses={404: {"description": "No Web Push channel is configured."}},
)
def vapid_public_key(
    user: CurrentUser,
    db: SessionDep,
    settings: NotifySettingsDep,
    school_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> VapidPublicKey:
    """The ``applicationServerKey`` a browser subscribes with: that of ``school_id``'s Web Push
    channel, by default of a parent's children's school, else the shared one."""
    schools = [school_id] if school_id is not None else _children_schools(db, user)
    for configs in [*(channels_of(settings, school) for school in schools), settings.channels]:
        config = _webpush_config(configs)
        if config is not None:
            key = Vapid.from_string(config.vapid_private_key.get_secret_value()).public_key
            point = key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            return VapidPublicKey(public_key=b64urlencode(point))
    raise HTTPException(
        status.HTTP_404_NOT_FOUND,
        "trường chưa cấu hình kênh Web Push / no Web Push channel is configured",
    )


@router.post("/me/push-subscriptions", status_code=status.HTTP_201_CREATED)
def add_push_subscription(
    body: PushSubscriptionIn, user: ParentUser, db: SessionDep, request: Request
) -> PushSubscriptionPublic:
    """Store this browser's subscription for the signed-in parent (replacing whatever was
    stored for its endpoint, even another parent's: a browser belongs to whoever subscribed it
    last)."""
    guardian = _guardian_or_404(db, user)
    user_agent = request.headers.get("user-agent", "")[:USER_AGENT_MAX] or None
    row = subscribe(db, guardian.id, body.browser(), user_agent)  # type: ignore[arg-type]
    db.commit()
    return PushSubscriptionPublic(endpoint=row.endpoint, created_at=row.created_at)


@router.delete("/me/push-subscriptions", status_code=status.HTTP_204_NO_CONTENT)
def remove_push_subscription(
    user: ParentUser,
    db: SessionDep,
    endpoint: Annotated[str, Query(min_length=1, max_length=1000)],
) -> None:
    """Stop pushing to this browser; 404 unless it is the signed-in parent's."""
    guardian = _guardian_or_404(db, user)
    removed = db.exec(
        delete(PushSubscription).where(
            col(PushSubscription.endpoint) == endpoint,
            col(PushSubscription.guardian_id) == guardian.id,
        )
    ).rowcount  # type: ignore[attr-defined]
    if not removed:
        db.rollback()
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "không tìm thấy đăng ký nhận thông báo này / push subscription not found",
        )
    db.commit()


# --- a parent's preferences ----------------------------------------------------------------------


def _disabled_kinds(db: Session, school_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = sorted(set(school_ids))
    policies = db.exec(select(NotificationPolicy).where(col(NotificationPolicy.school_id).in_(ids)))
    return {policy.school_id: policy.disabled_kinds for policy in policies}


def _children(
    db: Session, settings: NotifySection, guardian: Guardian, student_id: int | None = None
) -> list[ChildNotificationPreferences]:
    """The guardian's children (or just ``student_id``) with the guardian's choices."""
    statement = (
        select(StudentGuardian, Student, SchoolClass.name)
        .join(Student, col(Student.id) == StudentGuardian.student_id)
        .outerjoin(SchoolClass, col(SchoolClass.id) == Student.class_id)
        .where(StudentGuardian.guardian_id == guardian.id)
        .order_by(col(Student.code))
    )
    if student_id is not None:
        statement = statement.where(StudentGuardian.student_id == student_id)
    links = db.exec(statement).all()
    stored = db.get(NotificationPreference, guardian.id) or NotificationPreference(
        guardian_id=guardian.id
    )
    quiet = None
    if stored.quiet_start is not None and stored.quiet_end is not None:
        quiet = QuietHours(start=stored.quiet_start, end=stored.quiet_end)
    opted = _opt_outs(db, guardian.id)
    disabled = _disabled_kinds(db, (student.school_id for _, student, _ in links))
    return [
        ChildNotificationPreferences(
            student_id=student.id,
            student_code=student.code,
            student_name=student.full_name,
            class_name=class_name,
            school_id=student.school_id,
            channels=[name for name, on in (link.channel_preferences or {}).items() if on],
            kinds=in_kind_order(stored.kinds if stored.kinds is not None else MessageKind),
            quiet_hours=quiet,
            digest=stored.digest,
            digest_at=stored.digest_at,
            locale="en" if stored.locale == "en" else "vi",
            available_channels=list(channels_of(settings, student.school_id)),
            allowed_kinds=[
                kind for kind in MessageKind if kind not in disabled.get(student.school_id, ())
            ],
            opted_out=opted,
        )
        for link, student, class_name in links
    ]


@router.get("/me/notification-preferences")
def my_notification_preferences(
    user: ParentUser, db: SessionDep, settings: NotifySettingsDep, request: Request
) -> MyNotificationPreferences:
    """One entry per child of the signed-in parent: their choices and what the school offers."""
    guardian = own_guardian(db, user)
    children = _children(db, settings, guardian) if guardian is not None else []
    audit_read(
        db, user, [c.student_id for c in children], "notification_preferences", request=request
    )
    return MyNotificationPreferences(children=children)


@router.put("/me/notification-preferences/{student_id}")
def set_notification_preferences(
    student_id: IdPath,
    body: NotificationPreferencesSet,
    user: ParentUser,
    db: SessionDep,
    settings: NotifySettingsDep,
    request: Request,
) -> ChildNotificationPreferences:
    """Save the signed-in parent's choices for their child ``student_id`` (404 for anyone
    else's); the channels must be ones the child's school has configured."""
    guardian = own_guardian(db, user)
    link = db.get(StudentGuardian, (student_id, guardian.id)) if guardian is not None else None
    if guardian is None or link is None:
        raise not_found("student", student_id)
    [before] = _children(db, settings, guardian, student_id)
    unknown = [name for name in body.channels if name not in before.available_channels]
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"channels: trường không có kênh {', '.join(unknown)} / "
            f"the school has no channel {', '.join(unknown)}",
        )
    chosen = dict.fromkeys(body.channels, True)
    link.channel_preferences = chosen | {
        name: False for name in link.channel_preferences or {} if name not in chosen
    }
    # The order is the preference, but dicts compare equal in any order: say it changed.
    flag_modified(link, "channel_preferences")
    stored = db.get(NotificationPreference, guardian.id) or NotificationPreference(
        guardian_id=guardian.id
    )
    everything = set(MessageKind) <= body.kinds
    stored.kinds = None if everything else [kind.value for kind in in_kind_order(body.kinds)]
    quiet = body.quiet_hours
    stored.quiet_start, stored.quiet_end = (quiet.start, quiet.end) if quiet else (None, None)
    stored.digest, stored.digest_at, stored.locale = body.digest, body.digest_at, body.locale
    db.add_all([link, stored])
    db.flush()
    [after] = _children(db, settings, guardian, student_id)
    audit.record(
        db,
        actor_id=user.id,
        action="notification_preferences.update",
        entity=NotificationPreference.__tablename__,
        entity_id=guardian.id,
        student_id=student_id,
        detail=_change(before, after),
        ip=client_ip(request),
    )
    db.commit()
    return after


def _change(before: ChildNotificationPreferences, after: ChildNotificationPreferences) -> dict:
    """The audit detail of a preferences change: the chosen fields before and after."""
    fields = {"channels", "kinds", "quiet_hours", "digest", "digest_at", "locale"}
    return jsonable_encoder(
        {"before": before.model_dump(include=fields), "after": after.model_dump(include=fields)}
    )


# --- opt-outs from a message's link ---------------------------------------------------------------

OptOutChannel = Annotated[str, Path(min_length=1, max_length=32)]
OptOutKind = Annotated[str, Path(min_length=1, max_length=32)]


def _opt_outs(db: Session, guardian_id: int) -> list[OptedOut]:
    rows = db.exec(
        select(NotificationOptOut)
        .where(NotificationOptOut.guardian_id == guardian_id)
        .order_by(col(NotificationOptOut.channel), col(NotificationOptOut.kind))
    )
    return [OptedOut(channel=row.channel, kind=row.kind) for row in rows]


def _lift(
    db: Session, actor: User, guardian_id: int, channel: str, kind: str, request: Request
) -> None:
    """Remove one opt-out and audit who did it; 404 (nothing changed) when there is none."""
    if not lift_opt_out(db, guardian_id, channel, kind):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"không có lựa chọn ngừng nhận tin {kind!r} qua {channel!r} / "
            f"no opt-out from {kind!r} messages on {channel!r}",
        )
    audit.record(
        db,
        actor_id=actor.id,
        action="notification_opt_out.delete",
        entity=NotificationOptOut.__tablename__,
        entity_id=guardian_id,
        detail={"channel": channel, "kind": kind},
        ip=client_ip(request),
    )
    db.commit()


@router.delete("/me/notification-opt-outs/{channel}/{kind}", status_code=status.HTTP_204_NO_CONTENT)
def lift_my_opt_out(
    channel: OptOutChannel, kind: OptOutKind, user: ParentUser, db: SessionDep, request: Request
) -> None:
    """Get again the messages the signed-in parent stopped from a message's link (the ones
    skipped meanwhile are not sent)."""
    _lift(db, user, _guardian_or_404(db, user).id, channel, kind, request)


@router.get("/guardians/{guardian_id}/notification-opt-outs")
def guardian_opt_outs(guardian_id: IdPath, _admin: AdminUser, db: SessionDep) -> list[OptedOut]:
    """What a guardian stopped from messages' links (admins only, e.g. for a parent who asks
    on the phone why nothing comes)."""
    crud.get_or_404(db, Guardian, guardian_id, "guardian")
    return _opt_outs(db, guardian_id)


@router.delete(
    "/guardians/{guardian_id}/notification-opt-outs/{channel}/{kind}",
    status_code=status.HTTP_204_NO_CONTENT,
)
def lift_guardian_opt_out(
    guardian_id: IdPath,
    channel: OptOutChannel,
    kind: OptOutKind,
    admin: AdminUser,
    db: SessionDep,
    request: Request,
) -> None:
    """Lift a guardian's opt-out on their word (admins only; audited)."""
    crud.get_or_404(db, Guardian, guardian_id, "guardian")
    _lift(db, admin, guardian_id, channel, kind, request)


# --- a school's switches -------------------------------------------------------------------------


def _policy(school_id: int, disabled: Iterable[str]) -> NotificationPolicyPublic:
    off = in_kind_order(disabled)
    return NotificationPolicyPublic(
        school_id=school_id,
        disabled_kinds=off,
        allowed_kinds=[kind for kind in MessageKind if kind not in off],
    )


@router.get("/schools/{school_id}/notification-policy")
def get_notification_policy(
    school_id: IdPath, _admin: AdminUser, db: SessionDep
) -> NotificationPolicyPublic:
    """The kinds of message the school sends to no one (admins only)."""
    crud.get_or_404(db, School, school_id, "school")
    policy = db.get(NotificationPolicy, school_id)
    return _policy(school_id, policy.disabled_kinds if policy else ())


@router.put("/schools/{school_id}/notification-policy")
def set_notification_policy(
    school_id: IdPath,
    body: NotificationPolicySet,
    admin: AdminUser,
    db: SessionDep,
    request: Request,
) -> NotificationPolicyPublic:
    """Switch kinds of message off (or back on) for the whole school: new messages of a
    switched-off kind are not written, and those still waiting (queued, held for quiet hours,
    kept for a digest) are skipped when their time comes."""
    crud.get_or_404(db, School, school_id, "school")
    policy = db.get(NotificationPolicy, school_id) or NotificationPolicy(school_id=school_id)
    before = [kind.value for kind in in_kind_order(policy.disabled_kinds)]
    policy.disabled_kinds = [kind.value for kind in in_kind_order(body.disabled_kinds)]
    db.add(policy)
    audit.record(
        db,
        actor_id=admin.id,
        action="notification_policy.update",
        entity=NotificationPolicy.__tablename__,
        entity_id=school_id,
        detail={
            "before": {"disabled_kinds": before},
            "after": {"disabled_kinds": policy.disabled_kinds},
        },
        ip=client_ip(request),
    )
    db.commit()
    return _policy(school_id, policy.disabled_kinds)
