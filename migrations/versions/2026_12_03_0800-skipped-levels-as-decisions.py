"""A sale stores the decisions of the upline levels it did not pay, not their API form.

Each skipped level was stored as GET /v1/sales/{id} printed it: with `"paid": false`, every
field present (null where it does not apply), the rate and amount formatted. It becomes the
decision itself: level, member, reason and, when the member held a paid level, that level and
the rate and amount as decimal text; fields that do not apply are left out. The API formats
them when it answers, as it does the override lines.

Revision ID: 0010_skipped_level_decisions
Revises: 0009_team_volumes_by_label
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_skipped_level_decisions"
down_revision: str | None = "0009_team_volumes_by_label"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The formatted rate ("0.05") and amount ("0.00") are already plain decimal text of
    # their values: only `paid` and the nulls go.
    op.execute(
        """
        UPDATE sales SET skipped_levels = (
            SELECT jsonb_agg(jsonb_strip_nulls(d.level - 'paid') ORDER BY d.position)
            FROM jsonb_array_elements(skipped_levels) WITH ORDINALITY AS d(level, position))
        WHERE skipped_levels <> '[]'::jsonb
        """
    )


def downgrade() -> None:
    # The rate as the API printed it: no trailing zeros past the second decimal. The amount
    # of a skipped level is zero quantized to the currency's minor unit, which is how the API
    # printed it too.
    op.execute(
        """
        UPDATE sales SET skipped_levels = (
            SELECT jsonb_agg(
                       jsonb_build_object(
                           'level', d.level -> 'level',
                           'member_id', d.level -> 'member_id',
                           'paid', false,
                           'paid_level', d.level -> 'paid_level',
                           'rate', to_jsonb(CASE
                               WHEN scale(trim_scale(r.rate)) < 2 THEN round(r.rate, 2)::text
                               ELSE trim_scale(r.rate)::text
                           END),
                           'amount', d.level -> 'amount',
                           'reason', d.level -> 'reason')
                       ORDER BY d.position)
            FROM jsonb_array_elements(skipped_levels) WITH ORDINALITY AS d(level, position),
                 LATERAL (SELECT CAST(d.level ->> 'rate' AS numeric) AS rate) AS r)
        WHERE skipped_levels <> '[]'::jsonb
        """
    )
