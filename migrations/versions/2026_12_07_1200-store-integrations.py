"""Store integrations: a store (Shopify, WooCommerce, Stripe) connected to one program,
and every signed delivery it sent, kept.

`integrations` holds the platform's signing secret as given (an HMAC key: it cannot be
hashed and still verify), which nothing ever prints again. `store_deliveries` keeps each
delivery's raw body and the headers its reading needs, stored (`received`) before it is
applied, then `applied`, `parked` (waiting for what it refers to: `waiting_for` is
`member:{id}` or `sale:{id}` or `payment_intent:{id}`) or `refused` with its code; a
platform's delivery id (`delivery_key`) is stored once per integration, which is how a
redelivery is known. `store_references` maps a Stripe PaymentIntent to the sale of the
invoice it paid, for refunds of the current API, which name only the PaymentIntent.

Revision ID: 0015_store_integrations
Revises: 0014_referral_codes
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_store_integrations"
down_revision: str | None = "0014_referral_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("integration_id", sa.Text(), nullable=False),
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("attribution_field", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("integration_id", name="pk_integrations"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_integrations_program_id"
        ),
        sa.CheckConstraint(
            "platform IN ('shopify', 'woocommerce', 'stripe')", name="ck_integrations_platform"
        ),
    )
    op.create_index("ix_integrations_program", "integrations", ["program_id", "created_at"])
    op.create_table(
        "store_deliveries",
        sa.Column("integration_id", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("delivery_key", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("waiting_for", sa.Text(), nullable=True),
        sa.Column("sale_id", sa.Text(), nullable=True),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("integration_id", "delivery_id", name="pk_store_deliveries"),
        sa.UniqueConstraint(
            "integration_id", "delivery_key", name="uq_store_deliveries_delivery_key"
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.integration_id"],
            name="fk_store_deliveries_integration_id",
        ),
        sa.CheckConstraint(
            "status IN ('received', 'applied', 'parked', 'refused')",
            name="ck_store_deliveries_status",
        ),
        sa.CheckConstraint(
            "(status = 'parked') = (waiting_for IS NOT NULL)",
            name="ck_store_deliveries_waiting",
        ),
    )
    op.create_index(
        "ix_store_deliveries_status",
        "store_deliveries",
        ["integration_id", "status", "received_at", "delivery_id"],
    )
    op.create_index(
        "ix_store_deliveries_waiting",
        "store_deliveries",
        ["program_id", "waiting_for", "received_at", "delivery_id"],
        postgresql_where=sa.text("status = 'parked'"),
    )
    op.create_table(
        "store_references",
        sa.Column("integration_id", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("sale_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("integration_id", "reference", name="pk_store_references"),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.integration_id"],
            name="fk_store_references_integration_id",
        ),
    )


def downgrade() -> None:
    op.drop_table("store_references")
    op.drop_index("ix_store_deliveries_waiting", table_name="store_deliveries")
    op.drop_index("ix_store_deliveries_status", table_name="store_deliveries")
    op.drop_table("store_deliveries")
    op.drop_index("ix_integrations_program", table_name="integrations")
    op.drop_table("integrations")
