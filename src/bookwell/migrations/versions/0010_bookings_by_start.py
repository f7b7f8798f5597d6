"""bookings by organization and start: the list's start_from / start_to filter reads a range, not the whole organization

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bookings_organization_id_starts_at", "bookings", ["organization_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_bookings_organization_id_starts_at", table_name="bookings")
