"""Initial schema: every table of server.models.

Generated against PostgreSQL; tests/server/test_models_migrations.py checks that upgrading an
empty SQLite or PostgreSQL database gives exactly the models' schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 02:31:44.790960
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "school",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("school_weekdays", sa.String(length=7), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school")),
    )
    op.create_table(
        "user_account",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "teacher",
                "parent",
                "technician",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("username", name=op.f("uq_user_account_username")),
    )
    op.create_table(
        "calendar_day",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "holiday",
                "school_day",
                name="calendardaykind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_calendar_day_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_day")),
        sa.UniqueConstraint("school_id", "date", name=op.f("uq_calendar_day_school_id_date")),
    )
    op.create_table(
        "guardian",
        sa.Column("full_name", sa.String(length=128), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("zalo_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_guardian_user_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardian")),
        sa.UniqueConstraint("user_id", name=op.f("uq_guardian_user_id")),
    )
    op.create_index(op.f("ix_guardian_phone"), "guardian", ["phone"], unique=False)
    op.create_table(
        "school_session",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("late_after", sa.Time(), nullable=False),
        sa.Column("absent_after", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_school_session_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school_session")),
        sa.UniqueConstraint("school_id", "code", name=op.f("uq_school_session_school_id_code")),
    )
    op.create_index(
        op.f("ix_school_session_school_id"), "school_session", ["school_id"], unique=False
    )
    op.create_table(
        "school_year",
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_school_year_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school_year")),
        sa.UniqueConstraint("school_id", "name", name=op.f("uq_school_year_school_id_name")),
    )
    op.create_index(op.f("ix_school_year_school_id"), "school_year", ["school_id"], unique=False)
    op.create_table(
        "site",
        sa.Column("code", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"], ["school.id"], name=op.f("fk_site_school_id_school"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
        sa.UniqueConstraint("code", name=op.f("uq_site_code")),
    )
    op.create_index(op.f("ix_site_school_id"), "site", ["school_id"], unique=False)
    op.create_table(
        "absent_sweep",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("marked", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["school_session.id"],
            name=op.f("fk_absent_sweep_session_id_school_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "date", name=op.f("pk_absent_sweep")),
    )
    op.create_table(
        "device",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("credential_id", sa.String(length=128), nullable=True),
        sa.Column(
            "direction",
            sa.Enum(
                "in",
                "out",
                "line",
                name="devicedirection",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "unknown",
                "online",
                "offline",
                name="devicestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_version", sa.String(length=32), nullable=True),
        sa.Column("model_pack", sa.String(length=64), nullable=True),
        sa.Column("gallery_version", sa.Integer(), nullable=True),
        sa.Column("last_telemetry", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_device_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device")),
        sa.UniqueConstraint("site_id", "device_id", name=op.f("uq_device_site_id_device_id")),
    )
    op.create_index(op.f("ix_device_site_id"), "device", ["site_id"], unique=False)
    op.create_table(
        "school_class",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("school_year_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("homeroom_teacher_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["homeroom_teacher_id"],
            ["user_account.id"],
            name=op.f("fk_school_class_homeroom_teacher_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_school_class_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["school_year_id"],
            ["school_year.id"],
            name=op.f("fk_school_class_school_year_id_school_year"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school_class")),
        sa.UniqueConstraint(
            "school_year_id", "name", name=op.f("uq_school_class_school_year_id_name")
        ),
    )
    op.create_index(
        op.f("ix_school_class_homeroom_teacher_id"),
        "school_class",
        ["homeroom_teacher_id"],
        unique=False,
    )
    op.create_index(op.f("ix_school_class_school_id"), "school_class", ["school_id"], unique=False)
    op.create_table(
        "term",
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("school_year_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_year_id"],
            ["school_year.id"],
            name=op.f("fk_term_school_year_id_school_year"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_term")),
    )
    op.create_index(op.f("ix_term_school_year_id"), "term", ["school_year_id"], unique=False)
    op.create_table(
        "student",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=128), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "suspended",
                "transferred",
                "graduated",
                name="studentstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("enrolled_on", sa.Date(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["school_class.id"],
            name=op.f("fk_student_class_id_school_class"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_student_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student")),
        sa.UniqueConstraint("code", name=op.f("uq_student_code")),
    )
    op.create_index(op.f("ix_student_class_id"), "student", ["class_id"], unique=False)
    op.create_index(op.f("ix_student_school_id"), "student", ["school_id"], unique=False)
    op.create_table(
        "attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "present",
                "late",
                "absent",
                "excused",
                name="attendancestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "gate",
                "absent_job",
                "leave",
                "manual",
                name="attendancesource",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("first_in", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_out", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_by", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by"],
            ["user_account.id"],
            name=op.f("fk_attendance_changed_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["school_session.id"],
            name=op.f("fk_attendance_session_id_school_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_attendance_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance")),
        sa.UniqueConstraint(
            "student_id",
            "date",
            "session_id",
            name=op.f("uq_attendance_student_id_date_session_id"),
        ),
    )
    op.create_index(
        "ix_attendance_date_session_id", "attendance", ["date", "session_id"], unique=False
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("student_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user_account.id"],
            name=op.f("fk_audit_log_actor_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_audit_log_student_id_student"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"], unique=False)
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_student_id"), "audit_log", ["student_id"], unique=False)
    op.create_table(
        "biometric_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("given_by_guardian_id", sa.Integer(), nullable=True),
        sa.Column("given_by_name", sa.String(length=128), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["given_by_guardian_id"],
            ["guardian.id"],
            name=op.f("fk_biometric_consent_given_by_guardian_id_guardian"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["user_account.id"],
            name=op.f("fk_biometric_consent_recorded_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_biometric_consent_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_biometric_consent")),
    )
    op.create_index(
        op.f("ix_biometric_consent_student_id"), "biometric_consent", ["student_id"], unique=False
    )
    op.create_table(
        "card",
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "student_card",
                "cccd",
                name="cardkind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_card_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card")),
        sa.UniqueConstraint("uid", name=op.f("uq_card_uid")),
    )
    op.create_index(op.f("ix_card_student_id"), "card", ["student_id"], unique=False)
    op.create_table(
        "leave_request",
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column(
            "reason",
            sa.Enum(
                "medical",
                "family",
                "education",
                "other",
                name="leavereason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "cancelled",
                name="leavestatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["user_account.id"],
            name=op.f("fk_leave_request_decided_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["user_account.id"],
            name=op.f("fk_leave_request_requested_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["school_session.id"],
            name=op.f("fk_leave_request_session_id_school_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_leave_request_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leave_request")),
    )
    op.create_index(
        op.f("ix_leave_request_student_id"), "leave_request", ["student_id"], unique=False
    )
    op.create_table(
        "raw_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "counted",
                "unknown_face",
                "unknown_student",
                "unknown_card",
                "other_school",
                "inactive_student",
                "face_mismatch",
                "face_missing",
                "not_school_day",
                "outside_sessions",
                name="eventoutcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
            name=op.f("fk_raw_event_device_id_device"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_raw_event_student_id_student"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_event")),
        sa.UniqueConstraint("event_id", name=op.f("uq_raw_event_event_id")),
    )
    op.create_index(op.f("ix_raw_event_device_id"), "raw_event", ["device_id"], unique=False)
    op.create_index(op.f("ix_raw_event_outcome"), "raw_event", ["outcome"], unique=False)
    op.create_index(op.f("ix_raw_event_student_id"), "raw_event", ["student_id"], unique=False)
    op.create_index(op.f("ix_raw_event_ts"), "raw_event", ["ts"], unique=False)
    op.create_table(
        "student_guardian",
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column(
            "relationship",
            sa.Enum(
                "mother",
                "father",
                "grandparent",
                "sibling",
                "guardian",
                "other",
                name="guardianrelationship",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("channel_preferences", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardian.id"],
            name=op.f("fk_student_guardian_guardian_id_guardian"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_student_guardian_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("student_id", "guardian_id", name=op.f("pk_student_guardian")),
    )
    op.create_table(
        "face_enrollment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=False),
        sa.Column("model_pack", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "photo",
                "cccd",
                name="enrollmentsource",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["biometric_consent.id"],
            name=op.f("fk_face_enrollment_consent_id_biometric_consent"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_face_enrollment_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_face_enrollment_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_enrollment")),
    )
    op.create_index(
        op.f("ix_face_enrollment_consent_id"), "face_enrollment", ["consent_id"], unique=False
    )
    op.create_index(
        op.f("ix_face_enrollment_student_id"), "face_enrollment", ["student_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_face_enrollment_student_id"), table_name="face_enrollment")
    op.drop_index(op.f("ix_face_enrollment_consent_id"), table_name="face_enrollment")
    op.drop_table("face_enrollment")
    op.drop_table("student_guardian")
    op.drop_index(op.f("ix_raw_event_ts"), table_name="raw_event")
    op.drop_index(op.f("ix_raw_event_student_id"), table_name="raw_event")
    op.drop_index(op.f("ix_raw_event_outcome"), table_name="raw_event")
    op.drop_index(op.f("ix_raw_event_device_id"), table_name="raw_event")
    op.drop_table("raw_event")
    op.drop_index(op.f("ix_leave_request_student_id"), table_name="leave_request")
    op.drop_table("leave_request")
    op.drop_index(op.f("ix_card_student_id"), table_name="card")
    op.drop_table("card")
    op.drop_index(op.f("ix_biometric_consent_student_id"), table_name="biometric_consent")
    op.drop_table("biometric_consent")
    op.drop_index(op.f("ix_audit_log_student_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor_id"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_attendance_date_session_id", table_name="attendance")
    op.drop_table("attendance")
    op.drop_index(op.f("ix_student_school_id"), table_name="student")
    op.drop_index(op.f("ix_student_class_id"), table_name="student")
    op.drop_table("student")
    op.drop_index(op.f("ix_term_school_year_id"), table_name="term")
    op.drop_table("term")
    op.drop_index(op.f("ix_school_class_school_id"), table_name="school_class")
    op.drop_index(op.f("ix_school_class_homeroom_teacher_id"), table_name="school_class")
    op.drop_table("school_class")
    op.drop_index(op.f("ix_device_site_id"), table_name="device")
    op.drop_table("device")
    op.drop_table("absent_sweep")
    op.drop_index(op.f("ix_site_school_id"), table_name="site")
    op.drop_table("site")
    op.drop_index(op.f("ix_school_year_school_id"), table_name="school_year")
    op.drop_table("school_year")
    op.drop_index(op.f("ix_school_session_school_id"), table_name="school_session")
    op.drop_table("school_session")
    op.drop_index(op.f("ix_guardian_phone"), table_name="guardian")
    op.drop_table("guardian")
    op.drop_table("calendar_day")
    op.drop_table("user_account")
    op.drop_table("school")
