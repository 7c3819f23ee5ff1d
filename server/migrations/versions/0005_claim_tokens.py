"""Claim tokens (server.auth_models.DeviceClaimToken): one-time, expiring tokens a new gate
exchanges for its own credential.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_claim_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_secret", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user_account.id"],
            name=op.f("fk_device_claim_token_created_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["device.id"],
            name=op.f("fk_device_claim_token_device_id_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_claim_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_device_claim_token_token_hash")),
    )
    op.create_index(
        op.f("ix_device_claim_token_created_by"),
        "device_claim_token",
        ["created_by"],
        unique=False,
    )
    op.create_index(
        op.f("ix_device_claim_token_device_id"), "device_claim_token", ["device_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_device_claim_token_device_id"), table_name="device_claim_token")
    op.drop_index(op.f("ix_device_claim_token_created_by"), table_name="device_claim_token")
    op.drop_table("device_claim_token")
