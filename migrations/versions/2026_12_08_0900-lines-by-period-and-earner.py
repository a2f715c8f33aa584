"""Commission lines: one index by (period, earner) in place of two.

`ix_commission_lines_earner` (program, earner, period, line) and `ix_commission_lines_period`
(program, period, earner) answered the same questions: an earner's lines of one period, in
line order, and a period's lines by earner. One index (program, period, earner, line)
answers both, and every line written (eleven for a sale, hundreds of thousands of bonus
lines for a close) updates one index fewer; the earner-first one was the widest of the
table's indexes, and the one whose pages a close's bonus lines touched at random. An
earner's lines across all periods, in line order, keep `ix_commission_lines_earner_all`.

Revision ID: 0016_lines_by_period_and_earner
Revises: 0015_store_integrations
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_lines_by_period_and_earner"
down_revision: str | None = "0015_store_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_commission_lines_period_earner",
        "commission_lines",
        ["program_id", "period", "earner_id", "line_id"],
    )
    op.drop_index("ix_commission_lines_period", "commission_lines")
    op.drop_index("ix_commission_lines_earner", "commission_lines")


def downgrade() -> None:
    op.create_index(
        "ix_commission_lines_earner",
        "commission_lines",
        ["program_id", "earner_id", "period", "line_id"],
    )
    op.create_index(
        "ix_commission_lines_period", "commission_lines", ["program_id", "period", "earner_id"]
    )
    op.drop_index("ix_commission_lines_period_earner", "commission_lines")
