"""bookings and idempotency keys

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bookwell.platform.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("organization_id", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("locked_until", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("organization_id", "key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("organization_id", sa.String(length=30), nullable=False),
        sa.Column("resource_id", sa.String(length=30), nullable=False),
        sa.Column("starts_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("customer_name", sa.String(length=200), nullable=False),
        sa.Column("customer_email", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hold_expires_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("price_amount", sa.BigInteger(), nullable=False),
        sa.Column("price_currency", sa.String(length=3), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("payment_token", sa.String(length=255), nullable=True),
        sa.Column("cancellation_reason", sa.String(length=500), nullable=True),
        sa.Column("exclusive", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status <> 'pending' OR hold_expires_at IS NOT NULL", name=op.f("ck_bookings_pending_has_hold")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'failed', 'expired', 'cancelled')",
            name=op.f("ck_bookings_status_known"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_bookings_range_not_empty")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_bookings_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_bookings_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], name=op.f("fk_bookings_resource_id_resources")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bookings_organization_id_customer_email_id", ["organization_id", "customer_email", "id"], unique=False
        )
        batch_op.create_index("ix_bookings_organization_id_id", ["organization_id", "id"], unique=False)
        batch_op.create_index(
            "ix_bookings_organization_id_resource_id_id", ["organization_id", "resource_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_bookings_organization_id_status_id", ["organization_id", "status", "id"], unique=False
        )
        batch_op.create_index(
            "ix_bookings_pending_hold",
            ["hold_expires_at"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index(
            "ix_bookings_resource_live",
            ["resource_id", "starts_at", "ends_at"],
            unique=False,
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_organization_id_id", ["organization_id", "id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # The second wall against double booking, for capacity-1 resources: no two live bookings
        # of one resource may overlap. (The first wall is the per-resource lock in the service.)
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_exclusive_no_overlap EXCLUDE USING gist "
            "(resource_id WITH =, tstzrange(starts_at, ends_at) WITH &&) "
            "WHERE (exclusive AND status IN ('pending', 'confirmed'))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_exclusive_no_overlap")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_organization_id_id")

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_bookings_resource_live",
            sqlite_where=sa.text("status IN ('pending', 'confirmed')"),
            postgresql_where=sa.text("status IN ('pending', 'confirmed')"),
        )
        batch_op.drop_index(
            "ix_bookings_pending_hold",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_bookings_organization_id_status_id")
        batch_op.drop_index("ix_bookings_organization_id_resource_id_id")
        batch_op.drop_index("ix_bookings_organization_id_id")
        batch_op.drop_index("ix_bookings_organization_id_customer_email_id")

    op.drop_table("bookings")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_created_at")

    op.drop_table("idempotency_keys")
