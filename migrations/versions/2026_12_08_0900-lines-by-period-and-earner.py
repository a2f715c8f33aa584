"""Commission lines: one index by (period, earner) in place of two; the volumes follow only
the members whose labels moved.

`ix_commission_lines_earner` (program, earner, period, line) and `ix_commission_lines_period`
(program, period, earner) answered the same questions: an earner's lines of one period, in
line order, and a period's lines by earner. One index (program, period, earner, line)
answers both, and every line written (eleven for a sale, hundreds of thousands of bonus
lines for a close) updates one index fewer; the earner-first one was the widest of the
table's indexes, and the one whose pages a close's bonus lines touched at random. An
earner's lines across all periods, in line order, keep `ix_commission_lines_earner_all`.
On a large ledger the new index takes a while to build, and `serve` applies migrations
before it answers: upgrade at a quiet hour (stores retry the webhooks they could not
deliver meanwhile).

`volumes_follow_labels` (0009) copies a member's new tree label onto their volume rows
after every update of members. It looked up the volume rows of every updated member,
whatever changed; a close that sets the ranks of a quarter of the members looked up all
their volume rows for nothing. It now updates volume rows only when the update moved a
label or a depth (the lock it takes then finds a program), and only those of members whose
label or depth moved.

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


_FOLLOW = """
    CREATE OR REPLACE FUNCTION volumes_follow_labels() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('labels:' || changed.program_id, 0))
        FROM (
            SELECT DISTINCT n.program_id FROM new_rows n
            JOIN old_rows o ON o.program_id = n.program_id AND o.member_id = n.member_id
            WHERE o.lo <> n.lo OR o.depth <> n.depth
            ORDER BY n.program_id
        ) changed;
        {skip}UPDATE member_period_volumes v SET lo = n.lo, depth = n.depth
        FROM new_rows n{moved}
        WHERE v.program_id = n.program_id AND v.member_id = n.member_id
          AND (v.lo <> n.lo OR v.depth <> n.depth);{end}
        RETURN NULL;
    END $$
"""
_MOVED = """
        JOIN old_rows o ON o.program_id = n.program_id AND o.member_id = n.member_id
                       AND (o.lo <> n.lo OR o.depth <> n.depth)"""


def upgrade() -> None:
    op.execute(
        _FOLLOW.format(moved=_MOVED, skip="IF FOUND THEN\n        ", end="\n        END IF;")
    )
    op.create_index(
        "ix_commission_lines_period_earner",
        "commission_lines",
        ["program_id", "period", "earner_id", "line_id"],
    )
    op.drop_index("ix_commission_lines_period", "commission_lines")
    op.drop_index("ix_commission_lines_earner", "commission_lines")


def downgrade() -> None:
    op.execute(_FOLLOW.format(moved="", skip="", end=""))
    op.create_index(
        "ix_commission_lines_earner",
        "commission_lines",
        ["program_id", "earner_id", "period", "line_id"],
    )
    op.create_index(
        "ix_commission_lines_period", "commission_lines", ["program_id", "period", "earner_id"]
    )
    op.drop_index("ix_commission_lines_period_earner", "commission_lines")
