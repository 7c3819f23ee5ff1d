"""The server's data model: SQLModel tables, and the field sets API schemas build on.

Shaped like full-stack-fastapi-template's ``models.py``: for each resource people edit through the
API, ``XBase`` holds the fields a client may set (with their validation), and ``X(XBase,
table=True)`` adds the id and what only the server sets. ``XCreate``/``XPublic`` schemas derive from
``XBase``. Tables the server alone writes (raw events, audit log, sweeps) have no base.

Conventions: every timestamp is an aware UTC datetime (:class:`~server.sqltypes.UtcDateTime`);
dates and times of day (``date``, ``time``) are in the school's own zone; enumerations are stored
as their values; constraint names follow :data:`NAMING` so later migrations can alter them on
SQLite too. A table model does not validate on construction (SQLModel skips it for tables), so
code that builds one from user input validates through the base first.
"""

import datetime as dt
import uuid
from datetime import UTC, datetime, time
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, field_validator, model_validator
from sqlalchemy import JSON, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from broker.topics import ID_PATTERN
from server.core.zones import DEFAULT_TIMEZONE
from server.sqltypes import UtcDateTime, enum_type

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING

# The same shapes the MQTT contract (broker.payloads) accepts, so anything stored can be sent.
ID_REGEX = f"^{ID_PATTERN}$"
STUDENT_CODE_REGEX = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# ASCII digits only: ``\d`` would also take other scripts' digits, which no CCCD carries.
NATIONAL_ID_REGEX = r"^[0-9]{12}$"
CARD_UID_REGEX = r"^(?:[0-9A-F]{2}){4,10}$"
PACK_REGEX = r"^[a-z0-9][a-z0-9._-]{0,63}$"


def utc_now() -> datetime:
    """Now, as an aware UTC datetime (the form every timestamp column takes)."""
    return datetime.now(UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(sa_type=UtcDateTime, **kwargs)


# --- enumerations -------------------------------------------------------------------------------


class Role(StrEnum):
    """What a user may do: admin everything, teacher their classes, parent their children,
    technician devices only."""

    ADMIN = "admin"
    TEACHER = "teacher"
    PARENT = "parent"
    TECHNICIAN = "technician"


class CalendarDayKind(StrEnum):
    """A calendar exception: a holiday on a usual school day, or a school day on a usual day off
    (a make-up Saturday)."""

    HOLIDAY = "holiday"
    SCHOOL_DAY = "school_day"


class StudentStatus(StrEnum):
    """Only ``active`` students are expected at school (and so can be marked absent)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    TRANSFERRED = "transferred"
    GRADUATED = "graduated"


class GuardianRelationship(StrEnum):
    MOTHER = "mother"
    FATHER = "father"
    GRANDPARENT = "grandparent"
    SIBLING = "sibling"
    GUARDIAN = "guardian"
    OTHER = "other"


class CardKind(StrEnum):
    STUDENT_CARD = "student_card"
    CCCD = "cccd"


class EnrollmentSource(StrEnum):
    """Where the enrolled face came from: a photo taken or uploaded, or the chip of a CCCD."""

    PHOTO = "photo"
    CCCD = "cccd"


class DeviceDirection(StrEnum):
    IN = "in"
    OUT = "out"
    LINE = "line"


class DeviceStatus(StrEnum):
    """Presence as the gate last reported it (its retained status, or its last will)."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class EventOutcome(StrEnum):
    """What ingest did with a stored event: counted it, or why not."""

    COUNTED = "counted"
    UNKNOWN_FACE = "unknown_face"
    UNKNOWN_STUDENT = "unknown_student"
    UNKNOWN_CARD = "unknown_card"
    OTHER_SCHOOL = "other_school"
    INACTIVE_STUDENT = "inactive_student"
    FACE_MISMATCH = "face_mismatch"
    FACE_MISSING = "face_missing"
    NOT_SCHOOL_DAY = "not_school_day"
    OUTSIDE_SESSIONS = "outside_sessions"


class AttendanceStatus(StrEnum):
    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"


class AttendanceSource(StrEnum):
    """Who decided the status; a person's decision (manual, leave) outranks the machines'."""

    GATE = "gate"
    ABSENT_JOB = "absent_job"
    LEAVE = "leave"
    MANUAL = "manual"


class LeaveReason(StrEnum):
    MEDICAL = "medical"
    FAMILY = "family"
    EDUCATION = "education"
    OTHER = "other"


class LeaveStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


# --- people -------------------------------------------------------------------------------------


class UserBase(SQLModel):
    username: str = Field(
        max_length=64, schema_extra={"pattern": r"^[A-Za-z0-9._@-]{3,64}$"}, unique=True
    )
    full_name: str = Field(max_length=128, min_length=1)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    role: Role = Field(sa_type=enum_type(Role))
    is_active: bool = True


class User(UserBase, table=True):
    """A person who signs in. ``password_hash`` is an argon2 hash; None until a password is set."""

    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = _timestamp(default_factory=utc_now)
    last_login_at: datetime | None = _timestamp(default=None)


# --- schools, calendars and sessions ------------------------------------------------------------


class SchoolBase(SQLModel):
    name: str = Field(max_length=200, min_length=1)
    timezone: str = Field(default=DEFAULT_TIMEZONE, max_length=64)
    school_weekdays: str = Field(
        default="12345",
        min_length=1,
        max_length=7,
        schema_extra={"pattern": r"^1?2?3?4?5?6?7?$"},
        description="ISO weekdays (1 = Monday) with lessons, e.g. '123456' for Mon-Sat.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


class School(SchoolBase, table=True):
    """A school: its time zone decides which local day and session an event belongs to."""

    __tablename__ = "school"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _timestamp(default_factory=utc_now)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SiteBase(SQLModel):
    code: str = Field(max_length=63, schema_extra={"pattern": ID_REGEX}, unique=True)
    name: str = Field(max_length=200, min_length=1)
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE", index=True)


class Site(SiteBase, table=True):
    """A campus of a school; ``code`` is the ``{site}`` segment of its gates' MQTT topics."""

    __tablename__ = "site"

    id: int | None = Field(default=None, primary_key=True)


class _DateRange(SQLModel):
    starts_on: dt.date
    ends_on: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> "_DateRange":
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


class SchoolYearBase(_DateRange):
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=32, min_length=1, description="e.g. '2025-2026'.")


class SchoolYear(SchoolYearBase, table=True):
    __tablename__ = "school_year"
    __table_args__ = (UniqueConstraint("school_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)


class TermBase(_DateRange):
    school_year_id: int = Field(foreign_key="school_year.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=64, min_length=1, description="e.g. 'Học kỳ I'.")


class Term(TermBase, table=True):
    """A term; only dates inside a term can be school days."""

    __tablename__ = "term"

    id: int | None = Field(default=None, primary_key=True)


class CalendarDayBase(SQLModel):
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE")
    date: dt.date
    kind: CalendarDayKind = Field(sa_type=enum_type(CalendarDayKind))
    name: str = Field(default="", max_length=200, description="e.g. 'Giỗ Tổ Hùng Vương'.")


class CalendarDay(CalendarDayBase, table=True):
    """An exception to the school's weekly pattern on one date."""

    __tablename__ = "calendar_day"
    __table_args__ = (UniqueConstraint("school_id", "date"),)

    id: int | None = Field(default=None, primary_key=True)


def _local_time(value: time | None) -> time | None:
    # None only reaches here in a PATCH body's optional copy of the field (schemas.common).
    if value is not None and value.tzinfo is not None:
        raise ValueError("a session time is on the school's clock: give it without a time zone")
    return value


LocalTime = Annotated[time, AfterValidator(_local_time)]
"""A wall-clock time in the school's zone. One with an offset is refused: it would mean another
clock, and Python cannot even order it against the session's other times."""


class SchoolSessionBase(SQLModel):
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE", index=True)
    code: str = Field(
        max_length=32, schema_extra={"pattern": r"^[a-z][a-z0-9_]{0,31}$"}, description="'morning'."
    )
    name: str = Field(max_length=64, min_length=1, description="e.g. 'Buổi sáng'.")
    start: LocalTime
    late_after: LocalTime = Field(description="An arrival after this (local) time is late.")
    absent_after: LocalTime = Field(description="Not seen by this time: absent, unless excused.")
    end: LocalTime

    @model_validator(mode="after")
    def _ordered(self) -> "SchoolSessionBase":
        if not self.start <= self.late_after <= self.absent_after < self.end:
            raise ValueError("need start <= late_after <= absent_after < end")
        return self


class SchoolSession(SchoolSessionBase, table=True):
    """A session of the school day (morning, afternoon), in the school's local time."""

    __tablename__ = "school_session"
    __table_args__ = (UniqueConstraint("school_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)


# --- classes, students, guardians ---------------------------------------------------------------


class SchoolClassBase(SQLModel):
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE", index=True)
    school_year_id: int = Field(foreign_key="school_year.id", ondelete="CASCADE")
    name: str = Field(max_length=32, min_length=1, description="e.g. '10A1'.")
    grade: int = Field(ge=1, le=12)
    homeroom_teacher_id: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL", index=True
    )


class SchoolClass(SchoolClassBase, table=True):
    """A class in one school year, with its homeroom teacher."""

    __tablename__ = "school_class"
    __table_args__ = (UniqueConstraint("school_year_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)


class StudentBase(SQLModel):
    code: str = Field(
        max_length=64,
        schema_extra={"pattern": STUDENT_CODE_REGEX},
        unique=True,
        description="The id gates send as student_id (e.g. the national student code).",
    )
    full_name: str = Field(max_length=128, min_length=1)
    date_of_birth: dt.date | None = None
    national_id: str | None = Field(
        default=None,
        max_length=12,
        schema_extra={"pattern": NATIONAL_ID_REGEX},
        unique=True,
        index=True,
        description="The 12-digit personal identification number (số định danh cá nhân) on the "
        "student's CCCD, which enrollment compares with the card's chip; personal data, like the "
        "date of birth. Unique when set; many students may have none.",
    )
    school_id: int = Field(foreign_key="school.id", ondelete="CASCADE", index=True)
    class_id: int | None = Field(
        default=None, foreign_key="school_class.id", ondelete="SET NULL", index=True
    )
    status: StudentStatus = Field(default=StudentStatus.ACTIVE, sa_type=enum_type(StudentStatus))
    enrolled_on: dt.date | None = Field(
        default=None, description="First day the student is expected; None: always was."
    )


class Student(StudentBase, table=True):
    __tablename__ = "student"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _timestamp(default_factory=utc_now)
    updated_at: datetime = _timestamp(default_factory=utc_now)


class GuardianBase(SQLModel):
    full_name: str = Field(max_length=128, min_length=1)
    phone: str | None = Field(default=None, max_length=32, index=True)
    email: str | None = Field(default=None, max_length=254)
    zalo_id: str | None = Field(default=None, max_length=64)
    user_id: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL", unique=True
    )


class Guardian(GuardianBase, table=True):
    """A parent or guardian; ``user_id`` is their sign-in account, if they have one."""

    __tablename__ = "guardian"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _timestamp(default_factory=utc_now)


def default_channels() -> dict[str, bool]:
    """Notification channels a new guardian link starts with: push and SMS."""
    return {"push": True, "sms": True, "zalo": False, "email": False}


class StudentGuardianBase(SQLModel):
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE", primary_key=True)
    guardian_id: int = Field(foreign_key="guardian.id", ondelete="CASCADE", primary_key=True)
    relationship: GuardianRelationship = Field(sa_type=enum_type(GuardianRelationship))
    is_primary: bool = False
    channel_preferences: dict[str, bool] = Field(
        default_factory=default_channels,
        sa_type=JSON,
        description="Channel name -> whether this guardian wants this student's alerts there.",
    )


class StudentGuardian(StudentGuardianBase, table=True):
    """Links a guardian to a student, with how they want to hear about that student."""

    __tablename__ = "student_guardian"


# --- credentials: cards and faces ---------------------------------------------------------------


class CardBase(SQLModel):
    uid: str = Field(max_length=20, schema_extra={"pattern": CARD_UID_REGEX}, unique=True)
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE", index=True)
    kind: CardKind = Field(default=CardKind.STUDENT_CARD, sa_type=enum_type(CardKind))
    active: bool = True


class Card(CardBase, table=True):
    """A chip card; its UID (upper-case hex, as gates send it) identifies one student."""

    __tablename__ = "card"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _timestamp(default_factory=utc_now)


class BiometricConsent(SQLModel, table=True):
    """A recorded consent to keep a student's face templates: who gave it, when, for what.

    Every :class:`FaceEnrollment` points at one, so no template exists without a consent;
    withdrawing it (``withdrawn_at``) must delete the templates.
    """

    __tablename__ = "biometric_consent"

    id: int | None = Field(default=None, primary_key=True)
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE", index=True)
    given_by_guardian_id: int | None = Field(
        default=None, foreign_key="guardian.id", ondelete="SET NULL"
    )
    given_by_name: str = Field(max_length=128, description="Who consented, as they signed.")
    given_at: datetime = _timestamp()
    scope: str = Field(
        default="attendance",
        max_length=64,
        description="What the templates may be used for, e.g. 'attendance' at the school's gates.",
    )
    recorded_by: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL"
    )
    withdrawn_at: datetime | None = _timestamp(default=None)


class FaceEnrollment(SQLModel, table=True):
    """One face template of a student for one model pack (embedding as float32 bytes)."""

    __tablename__ = "face_enrollment"

    id: int | None = Field(default=None, primary_key=True)
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE", index=True)
    consent_id: int = Field(foreign_key="biometric_consent.id", ondelete="CASCADE", index=True)
    model_pack: str = Field(max_length=64, schema_extra={"pattern": PACK_REGEX})
    embedding: bytes = Field(sa_type=LargeBinary)
    dim: int = Field(ge=1, le=4096)
    quality: float | None = Field(default=None, ge=0.0, le=1.0)
    source: EnrollmentSource = Field(sa_type=enum_type(EnrollmentSource))
    created_by: int | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    created_at: datetime = _timestamp(default_factory=utc_now)


# --- devices and what they send -----------------------------------------------------------------


class DeviceBase(SQLModel):
    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE", index=True)
    device_id: str = Field(
        max_length=63, schema_extra={"pattern": ID_REGEX}, description="The {device} topic id."
    )
    name: str = Field(default="", max_length=200)
    credential_id: str | None = Field(
        default=None, max_length=128, description="Broker username or client-cert name."
    )
    direction: DeviceDirection = Field(
        default=DeviceDirection.IN, sa_type=enum_type(DeviceDirection)
    )
    enabled: bool = Field(default=True, description="A disabled gate's messages are refused.")


class Device(DeviceBase, table=True):
    """A registered gate; ingest accepts messages only from enabled gates at their own site."""

    __tablename__ = "device"
    __table_args__ = (UniqueConstraint("site_id", "device_id"),)

    id: int | None = Field(default=None, primary_key=True)
    status: DeviceStatus = Field(default=DeviceStatus.UNKNOWN, sa_type=enum_type(DeviceStatus))
    last_seen_at: datetime | None = _timestamp(default=None)
    agent_version: str | None = Field(default=None, max_length=32)
    model_pack: str | None = Field(default=None, max_length=64)
    gallery_version: int | None = None
    last_telemetry: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = _timestamp(default_factory=utc_now)


class RawEvent(SQLModel, table=True):
    """A gate event exactly as received (``payload``), stored once per ``event_id``, with what
    ingest made of it (``outcome``) and the student it resolved to."""

    __tablename__ = "raw_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: uuid.UUID = Field(unique=True)
    device_id: int = Field(foreign_key="device.id", ondelete="CASCADE", index=True)
    ts: datetime = _timestamp(index=True)
    received_at: datetime = _timestamp()
    student_id: int | None = Field(
        default=None, foreign_key="student.id", ondelete="SET NULL", index=True
    )
    outcome: EventOutcome = Field(sa_type=enum_type(EventOutcome), index=True)
    payload: dict[str, Any] = Field(sa_type=JSON)


# --- attendance ---------------------------------------------------------------------------------


class Attendance(SQLModel, table=True):
    """A student's attendance in one session of one (local) date."""

    __tablename__ = "attendance"
    __table_args__ = (
        UniqueConstraint("student_id", "date", "session_id"),
        Index("ix_attendance_date_session_id", "date", "session_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE")
    date: dt.date
    session_id: int = Field(foreign_key="school_session.id", ondelete="CASCADE")
    status: AttendanceStatus = Field(sa_type=enum_type(AttendanceStatus))
    source: AttendanceSource = Field(sa_type=enum_type(AttendanceSource))
    first_in: datetime | None = _timestamp(default=None)
    last_out: datetime | None = _timestamp(default=None)
    changed_by: int | None = Field(
        default=None,
        foreign_key="user_account.id",
        ondelete="SET NULL",
        description="The person behind a manual or leave status.",
    )
    note: str | None = Field(default=None, max_length=500)
    updated_at: datetime = _timestamp(default_factory=utc_now)


class LeaveRequestBase(_DateRange):
    student_id: int = Field(foreign_key="student.id", ondelete="CASCADE", index=True)
    session_id: int | None = Field(
        default=None,
        foreign_key="school_session.id",
        ondelete="CASCADE",
        description="One session only; None: every session of each day.",
    )
    reason: LeaveReason = Field(sa_type=enum_type(LeaveReason))
    note: str = Field(default="", max_length=500)


class LeaveRequest(LeaveRequestBase, table=True):
    """A request for excused absence; approved, it makes the covered sessions ``excused``."""

    __tablename__ = "leave_request"

    id: int | None = Field(default=None, primary_key=True)
    status: LeaveStatus = Field(default=LeaveStatus.PENDING, sa_type=enum_type(LeaveStatus))
    requested_by: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL"
    )
    requested_at: datetime = _timestamp(default_factory=utc_now)
    decided_by: int | None = Field(default=None, foreign_key="user_account.id", ondelete="SET NULL")
    decided_at: datetime | None = _timestamp(default=None)


class AbsentSweep(SQLModel, table=True):
    """Marks that the absent job has handled one session of one date, so catching up after
    downtime does not repeat the work."""

    __tablename__ = "absent_sweep"

    session_id: int = Field(foreign_key="school_session.id", ondelete="CASCADE", primary_key=True)
    date: dt.date = Field(primary_key=True)
    done_at: datetime = _timestamp(default_factory=utc_now)
    marked: int = Field(default=0, description="Students marked absent or excused by the sweep.")


class AuditLog(SQLModel, table=True):
    """Who read or changed what, and when; ``actor_id`` None is the system itself."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _timestamp(default_factory=utc_now, index=True)
    actor_id: int | None = Field(
        default=None, foreign_key="user_account.id", ondelete="SET NULL", index=True
    )
    action: str = Field(max_length=64, description="e.g. 'attendance.manual_change'.")
    entity: str = Field(max_length=64, description="The table, e.g. 'attendance'.")
    entity_id: str | None = Field(default=None, max_length=64)
    student_id: int | None = Field(
        default=None, foreign_key="student.id", ondelete="SET NULL", index=True
    )
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    ip: str | None = Field(default=None, max_length=45)
