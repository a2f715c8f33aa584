"""Ranks decided at a close, and the bonus lines it writes.

`period_ranks` keeps, for every closed period, the figures that decided each member's
paid-as rank: where they sat (`sponsor_id` at the close), whether they were active, their
personal and organization volume, their direct recruits active with volume, the highest
rank held by them or anyone below (`best_rank`, what their sponsor's leg counts) and the
rank itself. A member with no volume, no rank and nobody ranked below has no row: their
figures are all zero. Like statements, the rows are written by the close and never change.

`members.rank` is the rank in force (the paid-as rank of the latest closed period) and
`members.achieved_rank` the highest paid-as rank ever held; the close sets both.

Bonus lines are lines of kind `bonus` without a sale: `sale_id` may be null for them only,
and `bonus` names their kind of bonus. The check is added NOT VALID and then validated, so
that checking the existing ledger does not hold off sales.

`advancements` records each advancement bonus paid, by member and rank name: it is paid
once per rank and member, ever (the primary key), whatever later plan versions call their
ranks.

Revision ID: 0013_ranks_and_bonuses
Revises: 0012_closed_periods
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_ranks_and_bonuses"
down_revision: str | None = "0012_closed_periods"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("achieved_rank", sa.Text(), nullable=True))
    op.alter_column("commission_lines", "sale_id", nullable=True)
    op.add_column("commission_lines", sa.Column("bonus", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_commission_lines_bonus"),
        "commission_lines",
        "(kind = 'bonus') = (bonus IS NOT NULL)"
        " AND bonus IN ('differential', 'matching', 'pool', 'advancement')"
        " AND (kind = 'bonus' OR sale_id IS NOT NULL)",
        postgresql_not_valid=True,
    )
    op.execute("ALTER TABLE commission_lines VALIDATE CONSTRAINT ck_commission_lines_bonus")
    op.create_table(
        "advancements",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("rank", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "member_id", "rank", name="pk_advancements"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_advancements_program_id"
        ),
    )
    op.execute(
        """
        CREATE TRIGGER advancements_append_only BEFORE UPDATE OR DELETE ON advancements
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )
    op.create_table(
        "period_ranks",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("sponsor_id", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("personal_volume", sa.Numeric(), nullable=False),
        sa.Column("organization_volume", sa.Numeric(), nullable=False),
        sa.Column("active_recruits", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Text(), nullable=True),
        sa.Column("best_rank", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("program_id", "period", "member_id", name="pk_period_ranks"),
        sa.ForeignKeyConstraint(
            ["program_id", "period"],
            ["closed_periods.program_id", "closed_periods.period"],
            name="fk_period_ranks_program_id_period",
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    op.create_index(
        "ix_period_ranks_sponsor", "period_ranks", ["program_id", "period", "sponsor_id"]
    )
    op.execute(
        """
        CREATE TRIGGER period_ranks_closed_insert AFTER INSERT ON period_ranks
        REFERENCING NEW TABLE AS changed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_closed_period_rows()
        """
    )
    op.execute(
        """
        CREATE TRIGGER period_ranks_append_only BEFORE UPDATE OR DELETE ON period_ranks
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )


def downgrade() -> None:
    # Lines are append-only: once a close has written bonus lines, the NOT NULL below fails
    # and the downgrade stops, rather than lose what was paid.
    op.drop_table("period_ranks")
    op.drop_table("advancements")
    op.drop_constraint(op.f("ck_commission_lines_bonus"), "commission_lines", type_="check")
    op.drop_column("commission_lines", "bonus")
    op.alter_column("commission_lines", "sale_id", nullable=False)
    op.drop_column("members", "achieved_rank")
