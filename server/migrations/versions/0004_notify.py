"""Notifications (server.notify.models): the outbox, push subscriptions, opt-outs, guardians'
and schools' notification choices.

Generated against PostgreSQL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:50:49.323495
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_policy",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("disabled_kinds", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_notification_policy_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("school_id", name=op.f("pk_notification_policy")),
    )
    op.create_table(
        "notification_opt_out",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardian.id"],
            name=op.f("fk_notification_opt_out_guardian_id_guardian"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_opt_out")),
        sa.UniqueConstraint(
            "guardian_id",
            "channel",
            "kind",
            name=op.f("uq_notification_opt_out_guardian_id_channel_kind"),
        ),
    )
    op.create_table(
        "notification_preference",
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=True),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("digest_at", sa.Time(), nullable=False),
        sa.Column("apprise_target", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardian.id"],
            name=op.f("fk_notification_preference_guardian_id_guardian"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("guardian_id", name=op.f("pk_notification_preference")),
    )
    op.create_table(
        "push_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=1000), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardian.id"],
            name=op.f("fk_push_subscription_guardian_id_guardian"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscription")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscription_endpoint")),
    )
    op.create_index(
        op.f("ix_push_subscription_guardian_id"), "push_subscription", ["guardian_id"], unique=False
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gate", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("short_text", sa.String(length=1000), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "held",
                "digest",
                "sending",
                "accepted",
                "failed",
                "skipped",
                "digested",
                name="notificationstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attendance_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("fallback_of", sa.Integer(), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["guardian_id"],
            ["guardian.id"],
            name=op.f("fk_notification_guardian_id_guardian"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["school.id"],
            name=op.f("fk_notification_school_id_school"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["student.id"],
            name=op.f("fk_notification_student_id_student"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notification_idempotency_key")),
    )
    op.create_index(
        op.f("ix_notification_guardian_id"), "notification", ["guardian_id"], unique=False
    )
    op.create_index(
        "ix_notification_school_id_day", "notification", ["school_id", "day"], unique=False
    )
    op.create_index(
        "ix_notification_status_next_attempt_at",
        "notification",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notification_student_id"), "notification", ["student_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_notification_student_id"), table_name="notification")
    op.drop_index("ix_notification_status_next_attempt_at", table_name="notification")
    op.drop_index("ix_notification_school_id_day", table_name="notification")
    op.drop_index(op.f("ix_notification_guardian_id"), table_name="notification")
    op.drop_table("notification")
    op.drop_index(op.f("ix_push_subscription_guardian_id"), table_name="push_subscription")
    op.drop_table("push_subscription")
    op.drop_table("notification_preference")
    op.drop_table("notification_opt_out")
    op.drop_table("notification_policy")
