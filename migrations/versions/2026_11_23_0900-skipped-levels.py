"""A sale keeps only the upline levels it did not pay: the paid ones are its override lines.

Revision ID: 0007_skipped_levels
Revises: 0006_unbounded_totals
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_skipped_levels"
down_revision: str | None = "0006_unbounded_totals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("sales", "decisions", new_column_name="skipped_levels")
    op.execute(
        """
        UPDATE sales SET skipped_levels = COALESCE(
            (SELECT jsonb_agg(d.level ORDER BY d.position)
             FROM jsonb_array_elements(skipped_levels) WITH ORDINALITY AS d(level, position)
             WHERE NOT (d.level ->> 'paid')::boolean),
            '[]'::jsonb)
        """
    )


def downgrade() -> None:
    # The paid levels come back from the override lines, as GET /v1/sales/{id} builds them
    # (rates and amounts as PostgreSQL prints numerics, with all their stored decimals).
    op.execute(
        """
        UPDATE sales s SET skipped_levels = COALESCE(
            (SELECT jsonb_agg(level ORDER BY (level ->> 'level')::int)
             FROM (
                 SELECT d.level FROM jsonb_array_elements(s.skipped_levels) AS d(level)
               UNION ALL
                 SELECT jsonb_build_object(
                     'level', l.level, 'member_id', l.earner_id, 'paid', true,
                     'paid_level', l.paid_level, 'rate', CAST(l.rate AS text),
                     'amount', CAST(l.amount AS text), 'reason', NULL)
                 FROM commission_lines l
                 WHERE l.program_id = s.program_id AND l.sale_id = s.sale_id
                   AND l.kind = 'override'
             ) AS levels),
            '[]'::jsonb)
        """
    )
    op.alter_column("sales", "skipped_levels", new_column_name="decisions")
