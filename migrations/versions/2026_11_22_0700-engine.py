"""Plans, sales, refunds, the commission ledger and per-period volumes.

Revision ID: 0002_engine
Revises: 0001_foundation
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_engine"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")
MONEY = sa.Numeric(19, 4)
RATE = sa.Numeric(11, 10)


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "version", name="pk_plan_versions"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_plan_versions_program_id"
        ),
    )
    op.create_index(
        "ix_plan_versions_effective",
        "plan_versions",
        ["program_id", "effective_from", "version"],
    )
    op.create_table(
        "sales",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("sale_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("volume", MONEY, nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("subscription_id", sa.Text(), nullable=True),
        sa.Column("customer", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("refunded", MONEY, server_default="0", nullable=False),
        sa.Column("refunded_volume", MONEY, server_default="0", nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("decisions", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "sale_id", name="pk_sales"),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.member_id"],
            name="fk_sales_program_id_member_id",
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "plan_version"],
            ["plan_versions.program_id", "plan_versions.version"],
            name="fk_sales_program_id_plan_version",
        ),
        sa.CheckConstraint("amount > 0", name="ck_sales_amount_positive"),
        sa.CheckConstraint("volume >= 0", name="ck_sales_volume_not_negative"),
        sa.CheckConstraint("refunded >= 0 AND refunded <= amount", name="ck_sales_refunded"),
        sa.CheckConstraint("customer IN ('retail', 'member')", name="ck_sales_customer"),
    )
    # The activity window: a member's own sales by time, volume read from the index alone.
    op.execute(
        "CREATE INDEX ix_sales_member_time ON sales (program_id, member_id, occurred_at)"
        " INCLUDE (volume)"
    )
    op.create_table(
        "refunds",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("refund_id", sa.Text(), nullable=False),
        sa.Column("sale_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("volume", MONEY, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "refund_id", name="pk_refunds"),
        sa.ForeignKeyConstraint(
            ["program_id", "sale_id"],
            ["sales.program_id", "sales.sale_id"],
            name="fk_refunds_program_id_sale_id",
        ),
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
    )
    op.create_index("ix_refunds_sale", "refunds", ["program_id", "sale_id", "created_at"])
    op.execute(
        "CREATE INDEX ix_refunds_member_time ON refunds (program_id, member_id, occurred_at)"
        " INCLUDE (volume)"
    )
    op.create_table(
        "commission_lines",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("line_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("sale_id", sa.Text(), nullable=False),
        sa.Column("refund_id", sa.Text(), nullable=True),
        sa.Column("earner_id", sa.Text(), nullable=False),
        sa.Column("source_member_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("paid_level", sa.Integer(), nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("base", MONEY, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "line_id", name="pk_commission_lines"),
        sa.ForeignKeyConstraint(
            ["program_id", "sale_id"],
            ["sales.program_id", "sales.sale_id"],
            name="fk_commission_lines_program_id_sale_id",
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "refund_id"],
            ["refunds.program_id", "refunds.refund_id"],
            name="fk_commission_lines_program_id_refund_id",
        ),
        sa.CheckConstraint(
            "kind IN ('personal', 'override', 'reversal', 'bonus')",
            name="ck_commission_lines_kind",
        ),
        sa.CheckConstraint(
            "(kind = 'reversal') = (refund_id IS NOT NULL)", name="ck_commission_lines_reversal"
        ),
    )
    op.create_index(
        "ix_commission_lines_earner",
        "commission_lines",
        ["program_id", "earner_id", "period", "line_id"],
    )
    op.create_index(
        "ix_commission_lines_earner_all", "commission_lines", ["program_id", "earner_id", "line_id"]
    )
    op.create_index("ix_commission_lines_sale", "commission_lines", ["program_id", "sale_id"])
    # Net volume of each member in each period (sales in, refunds out, by when they occur),
    # kept in the same transaction as the sale or refund it follows.
    op.create_table(
        "member_period_volumes",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("volume", MONEY, server_default="0", nullable=False),
        sa.Column("residual_volume", MONEY, server_default="0", nullable=False),
        sa.Column("sales", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "program_id", "period", "member_id", name="pk_member_period_volumes"
        ),
    )
    # The ledger is immutable: a refund adds reversal lines, nothing is rewritten.
    for table in ("commission_lines", "refunds", "plan_versions"):
        op.execute(
            f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
            """
        )


def downgrade() -> None:
    op.drop_table("member_period_volumes")
    op.drop_table("commission_lines")
    op.drop_table("refunds")
    op.drop_table("sales")
    op.drop_table("plan_versions")
