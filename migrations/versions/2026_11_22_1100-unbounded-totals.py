"""Period totals are sums of many sales: unbounded numerics, so no total can overflow.

Revision ID: 0006_unbounded_totals
Revises: 0005_tree_labels
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_unbounded_totals"
down_revision: str | None = "0005_tree_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("volume", "residual_volume"):
        op.alter_column("member_period_volumes", column, type_=sa.Numeric())


def downgrade() -> None:
    for column in ("volume", "residual_volume"):
        op.alter_column("member_period_volumes", column, type_=sa.Numeric(19, 4))
