"""Members' referral codes.

A member may carry a `referral_code`, the code they hand out: a recruit may be enrolled by
their sponsor's code. Codes are unique in a program whatever their case (people type them
in any case), hence the unique index on `lower(referral_code)`, which is also how a code
is looked up.

Revision ID: 0014_referral_codes
Revises: 0013_ranks_and_bonuses
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_referral_codes"
down_revision: str | None = "0013_ranks_and_bonuses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("referral_code", sa.Text(), nullable=True))
    op.create_index(
        "ux_members_referral_code",
        "members",
        ["program_id", sa.text("lower(referral_code)")],
        unique=True,
        postgresql_where=sa.text("referral_code IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_members_referral_code", table_name="members")
    op.drop_column("members", "referral_code")
