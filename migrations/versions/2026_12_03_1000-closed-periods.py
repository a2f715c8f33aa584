"""Closed periods and statements; a closed period's rows never change.

`programs.open_from` is the program's oldest open period ("YYYY-MM", null while no period
is closed): a sale or refund of an earlier month is booked there. `closed_periods` keeps
each close with the summary it answered, and `statements` one row per member and closed
period.

Triggers refuse, whatever the client, any row written into, or changed or deleted in, a
period before `open_from`: sales, refunds, commission lines, member period volumes and
statements. Statements, like the ledger, are never updated or deleted at all. A volume row
of a closed period may still take its member's new tree labels (a relabelling), never a new
figure. Checks on inserts run once per statement over the rows it inserted.

Statements are written by one INSERT ... SELECT over the period's lines, grouped by earner:
the lines get an index by period and earner.

Revision ID: 0012_closed_periods
Revises: 0011_cursor_keys
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_closed_periods"
down_revision: str | None = "0011_cursor_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(19, 4)
_GUARDED = ("sales", "refunds", "commission_lines", "member_period_volumes", "statements")


def upgrade() -> None:
    op.add_column("programs", sa.Column("open_from", sa.Text(), nullable=True))
    op.create_table(
        "closed_periods",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "period", name="pk_closed_periods"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_closed_periods_program_id"
        ),
    )
    op.create_table(
        "statements",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("rank", sa.Text(), nullable=True),
        sa.Column("personal", MONEY, nullable=False),
        sa.Column("override", MONEY, nullable=False),
        sa.Column("reversal", MONEY, nullable=False),
        sa.Column("bonus", MONEY, nullable=False),
        sa.Column("earned", MONEY, nullable=False),
        sa.Column("carried_in", MONEY, nullable=False),
        sa.Column("payable", MONEY, nullable=False),
        sa.Column("carried_out", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "period", "member_id", name="pk_statements"),
        sa.ForeignKeyConstraint(
            ["program_id", "period"],
            ["closed_periods.program_id", "closed_periods.period"],
            name="fk_statements_program_id_period",
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.CheckConstraint("payable >= 0", name="ck_statements_payable"),
        sa.CheckConstraint(
            "payable + carried_out = carried_in + earned", name="ck_statements_balance"
        ),
    )
    op.create_index(
        "ix_commission_lines_period",
        "commission_lines",
        ["program_id", "period", "earner_id"],
    )
    op.execute(
        """
        CREATE FUNCTION refuse_closed_period_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            closed text;
        BEGIN
            SELECT c.period INTO closed FROM changed_rows c
            JOIN programs p ON p.program_id = c.program_id
            WHERE c.period < p.open_from LIMIT 1;
            IF closed IS NOT NULL THEN
                RAISE EXCEPTION 'period % is closed: its % never change', closed, TG_TABLE_NAME
                    USING ERRCODE = 'CP001';
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION refuse_closed_period_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (
                SELECT 1 FROM programs p WHERE p.program_id = OLD.program_id
                AND (OLD.period < p.open_from OR NEW.period < p.open_from)
            ) THEN
                RAISE EXCEPTION 'period % is closed: its % never change', OLD.period,
                    TG_TABLE_NAME USING ERRCODE = 'CP001';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    for table in _GUARDED:
        op.execute(
            f"""
            CREATE TRIGGER {table}_closed_insert AFTER INSERT ON {table}
            REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_closed_period_rows()
            """
        )
    # Sales are never deleted (0008), and take refunded amounts after a close; lines and
    # refunds are append-only (0002).
    op.execute(
        """
        CREATE TRIGGER member_period_volumes_closed_delete AFTER DELETE ON member_period_volumes
        REFERENCING OLD TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_closed_period_rows()
        """
    )
    op.execute(
        """
        CREATE TRIGGER member_period_volumes_closed_update BEFORE UPDATE ON member_period_volumes
        FOR EACH ROW WHEN (
            OLD.volume IS DISTINCT FROM NEW.volume
            OR OLD.residual_volume IS DISTINCT FROM NEW.residual_volume
            OR OLD.sales IS DISTINCT FROM NEW.sales
            OR OLD.period IS DISTINCT FROM NEW.period
            OR OLD.member_id IS DISTINCT FROM NEW.member_id
            OR OLD.program_id IS DISTINCT FROM NEW.program_id
        ) EXECUTE FUNCTION refuse_closed_period_row()
        """
    )
    op.execute(
        """
        CREATE TRIGGER sales_closed_update BEFORE UPDATE ON sales
        FOR EACH ROW WHEN (
            OLD.period IS DISTINCT FROM NEW.period
            OR OLD.volume IS DISTINCT FROM NEW.volume
            OR OLD.member_id IS DISTINCT FROM NEW.member_id
            OR OLD.program_id IS DISTINCT FROM NEW.program_id
        ) EXECUTE FUNCTION refuse_closed_period_row()
        """
    )
    op.execute(
        """
        CREATE TRIGGER statements_append_only BEFORE UPDATE OR DELETE ON statements
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )
    op.execute(
        """
        CREATE TRIGGER closed_periods_append_only BEFORE UPDATE OR DELETE ON closed_periods
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER sales_closed_update ON sales")
    op.execute("DROP TRIGGER member_period_volumes_closed_update ON member_period_volumes")
    op.execute("DROP TRIGGER member_period_volumes_closed_delete ON member_period_volumes")
    for table in _GUARDED:
        if table != "statements":
            op.execute(f"DROP TRIGGER {table}_closed_insert ON {table}")
    op.drop_table("statements")
    op.drop_table("closed_periods")
    op.execute("DROP FUNCTION refuse_closed_period_row()")
    op.execute("DROP FUNCTION refuse_closed_period_rows()")
    op.drop_index("ix_commission_lines_period", "commission_lines")
    op.drop_column("programs", "open_from")
