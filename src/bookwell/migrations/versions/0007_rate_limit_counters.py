"""rate_limit_counters (one fixed window's count per key) and rate_limit_overrides (an organization's own quotas)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bookwell.platform.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("expires_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
    )
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_counters_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "rate_limit_overrides",
        sa.Column("organization_id", sa.String(length=30), nullable=False),
        sa.Column("policy", sa.String(length=50), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("window_s", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", "policy", name=op.f("pk_rate_limit_overrides")),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_overrides")
    with op.batch_alter_table("rate_limit_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_counters_expires_at"))
    op.drop_table("rate_limit_counters")
