"""A member's period volumes carry the member's tree label and depth, so a team's volume is
one range scan of the period's volumes.

`GET /v1/members/{id}/downline/stats` joined every member of the team to their volume row:
one index lookup per member (about 30 ms for a team of 10,000), or a hash of every volume row
of the period (all the program's sellers). With `lo` and `depth` on the volume rows, the
team's volume is the rows of the period whose `lo` lies in the team's label range.

The labels of a member change only when the tree is relabelled or a team is moved. A
trigger then gives the member's volume rows the new labels, in the same statement. Sales
write volume rows with their seller's labels while holding a shared advisory lock of the
program ('labels:' || program_id) from before they read those labels until they commit; the
trigger takes that lock exclusively before its update. So a volume row written with labels
that have just changed is committed, and corrected, before the relabelling commits, and
none is written meanwhile.

The primary key leads with the member (program, member, period), the order in which the
trigger finds a member's rows; the period's range scan has its own index.

Revision ID: 0009_team_volumes_by_label
Revises: 0008_lines_follow_their_sale
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_team_volumes_by_label"
down_revision: str | None = "0008_lines_follow_their_sale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("member_period_volumes", sa.Column("lo", sa.BigInteger(), nullable=True))
    op.add_column("member_period_volumes", sa.Column("depth", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE member_period_volumes v SET lo = m.lo, depth = m.depth
        FROM members m WHERE m.program_id = v.program_id AND m.member_id = v.member_id
        """
    )
    op.alter_column("member_period_volumes", "lo", nullable=False)
    op.alter_column("member_period_volumes", "depth", nullable=False)
    op.drop_constraint("pk_member_period_volumes", "member_period_volumes", type_="primary")
    op.create_primary_key(
        "pk_member_period_volumes", "member_period_volumes", ["program_id", "member_id", "period"]
    )
    op.create_index(
        "ix_member_period_volumes_lo", "member_period_volumes", ["program_id", "period", "lo"]
    )
    op.execute(
        """
        CREATE FUNCTION volumes_follow_labels() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtextextended('labels:' || changed.program_id, 0))
            FROM (
                SELECT DISTINCT n.program_id FROM new_rows n
                JOIN old_rows o ON o.program_id = n.program_id AND o.member_id = n.member_id
                WHERE o.lo <> n.lo OR o.depth <> n.depth
                ORDER BY n.program_id
            ) changed;
            UPDATE member_period_volumes v SET lo = n.lo, depth = n.depth
            FROM new_rows n
            WHERE v.program_id = n.program_id AND v.member_id = n.member_id
              AND (v.lo <> n.lo OR v.depth <> n.depth);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER volumes_follow_labels AFTER UPDATE ON members
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION volumes_follow_labels()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER volumes_follow_labels ON members")
    op.execute("DROP FUNCTION volumes_follow_labels()")
    op.drop_index("ix_member_period_volumes_lo", "member_period_volumes")
    op.drop_constraint("pk_member_period_volumes", "member_period_volumes", type_="primary")
    op.create_primary_key(
        "pk_member_period_volumes", "member_period_volumes", ["program_id", "period", "member_id"]
    )
    op.drop_column("member_period_volumes", "depth")
    op.drop_column("member_period_volumes", "lo")
