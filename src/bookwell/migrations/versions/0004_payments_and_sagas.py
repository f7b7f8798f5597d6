"""payments, refunds, and the persisted sagas with their step log

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bookwell.platform.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sagas",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("subject_id", sa.String(length=30), nullable=False),
        sa.Column("step", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=50), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", bookwell.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('running', 'done')", name=op.f("ck_sagas_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sagas")),
        sa.UniqueConstraint("type", "subject_id", name=op.f("uq_sagas_type_subject_id")),
    )
    with op.batch_alter_table("sagas", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sagas_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )

    op.create_table(
        "saga_steps",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("saga_id", sa.String(length=30), nullable=False),
        sa.Column("step", sa.String(length=50), nullable=False),
        sa.Column("outcome", sa.String(length=50), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["saga_id"], ["sagas.id"], name=op.f("fk_saga_steps_saga_id_sagas"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saga_steps")),
    )
    with op.batch_alter_table("saga_steps", schema=None) as batch_op:
        batch_op.create_index("ix_saga_steps_saga_id_at", ["saga_id", "at"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("organization_id", sa.String(length=30), nullable=False),
        sa.Column("booking_id", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_reference", sa.String(length=100), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("refund_reserved", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.CheckConstraint("refund_reserved <= amount", name=op.f("ck_payments_refunds_within_amount")),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= refund_reserved",
            name=op.f("ck_payments_refunded_within_reserved"),
        ),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_payments_booking_id_bookings")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_payments_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_payments_booking_id")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_organization_id_id", ["organization_id", "id"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=30), nullable=False),
        sa.Column("organization_id", sa.String(length=30), nullable=False),
        sa.Column("payment_id", sa.String(length=30), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("provider_reference", sa.String(length=100), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bookwell.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_refunds_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_refunds_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index("ix_refunds_payment_id", ["payment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_payment_id")

    op.drop_table("refunds")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_organization_id_id")

    op.drop_table("payments")
    with op.batch_alter_table("saga_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_saga_steps_saga_id_at")

    op.drop_table("saga_steps")
    with op.batch_alter_table("sagas", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_sagas_due", sqlite_where=sa.text("status = 'running'"), postgresql_where=sa.text("status = 'running'")
        )

    op.drop_table("sagas")
