"""bookings.customer_email_key: the casefolded form a customer_email filter matches, beside the address as given

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_email_key", sa.String(length=512), nullable=True))
    # Rows written before this were stored with ASCII letters lowercased: that is their key.
    op.execute("UPDATE bookings SET customer_email_key = lower(customer_email)")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.alter_column("customer_email_key", existing_type=sa.String(length=512), nullable=False)
        batch_op.drop_index("ix_bookings_organization_id_customer_email_id")
        batch_op.create_index(
            "ix_bookings_organization_id_customer_email_key_id", ["organization_id", "customer_email_key", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_organization_id_customer_email_key_id")
        batch_op.create_index(
            "ix_bookings_organization_id_customer_email_id", ["organization_id", "customer_email", "id"]
        )
        batch_op.drop_column("customer_email_key")
