"""inbox.sent_at: when the broker last accepted a delivery's job, so re-drive sends only what is lost

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bookwell.platform.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows that exist already get NULL: re-drive sends each of them once more if it is still
    # pending past its due time, which the inbox makes harmless.
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
