"""The student's personal identification number (server.models.StudentBase.national_id): the
12 digits on their CCCD, which enrollment compares with the card's chip.

A unique index rather than a unique constraint: both databases let many rows hold NULL under
either, and an index is added in place on SQLite, where a new constraint would mean rebuilding
the student table (and, with foreign keys on, dropping the old one would cascade to the rows
that refer to it).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("student", sa.Column("national_id", sa.String(length=12), nullable=True))
    op.create_index(op.f("ix_student_national_id"), "student", ["national_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_student_national_id"), table_name="student")
    # In place on SQLite too (3.35+ drops an unindexed column itself): no table rebuild.
    op.drop_column("student", "national_id")
