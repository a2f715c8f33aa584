"""Interval labels and depth on members: a derived index of the sponsor tree for subtree
range scans (see service/domain/labels.py). The adjacency list stays the source of truth.

The labelling is frozen here as it was when this migration was written, so that later edits
of the live code never change what it does.

Revision ID: 0005_tree_labels
Revises: 0004_claims
Create Date: 2026-11-22
"""

from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_tree_labels"
down_revision: str | None = "0004_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX_LABEL = 2**62
"""Labels live in (0, _MAX_LABEL)."""

PREORDER = sa.text(
    """
    WITH RECURSIVE walk(member_id, depth) AS (
        SELECT member_id, 0 FROM members WHERE program_id = :p AND sponsor_id IS NULL
      UNION ALL
        SELECT c.member_id, w.depth + 1
        FROM walk w JOIN members c ON c.program_id = :p AND c.sponsor_id = w.member_id
    ) SEARCH DEPTH FIRST BY member_id SET path
    SELECT member_id, depth FROM walk ORDER BY path
    """
)


def _assign(preorder: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int, int, int]]:
    """(member, lo, hi, depth) for a forest given as (member, depth) in depth-first order,
    with labels evenly spread over the whole range."""
    items = list(preorder)
    step = (_MAX_LABEL - 1) // (2 * len(items) + 1) if items else 1
    counter = 0
    open_members: list[tuple[str, int, int]] = []
    labels: dict[str, tuple[int, int]] = {}
    for member, depth in items:
        while open_members and open_members[-1][1] >= depth:
            closed, _, closed_lo = open_members.pop()
            counter += 1
            labels[closed] = (closed_lo, counter * step)
        counter += 1
        open_members.append((member, depth, counter * step))
    while open_members:
        closed, _, closed_lo = open_members.pop()
        counter += 1
        labels[closed] = (closed_lo, counter * step)
    for member, depth in items:
        lo, hi = labels[member]
        yield member, lo, hi, depth


def upgrade() -> None:
    op.add_column("members", sa.Column("lo", sa.BigInteger(), nullable=True))
    op.add_column("members", sa.Column("hi", sa.BigInteger(), nullable=True))
    op.add_column("members", sa.Column("depth", sa.Integer(), nullable=True))
    connection = op.get_bind()
    programs = connection.execute(sa.text("SELECT DISTINCT program_id FROM members")).scalars()
    for program_id in list(programs):
        preorder = [(r.member_id, r.depth) for r in connection.execute(PREORDER, {"p": program_id})]
        connection.execute(
            sa.text(
                "UPDATE members SET lo = :lo, hi = :hi, depth = :depth"
                " WHERE program_id = :p AND member_id = :m"
            ),
            [
                {"p": program_id, "m": member, "lo": lo, "hi": hi, "depth": depth}
                for member, lo, hi, depth in _assign(preorder)
            ],
        )
    for column in ("lo", "hi", "depth"):
        op.alter_column("members", column, nullable=False)
    op.execute(
        "CREATE INDEX ix_members_lo ON members (program_id, lo)"
        " INCLUDE (depth, status, enrolled_at, member_id)"
    )
    op.create_index("ix_members_hi", "members", ["program_id", "hi"])
    op.create_index("ix_members_depth_lo", "members", ["program_id", "depth", "lo"])
    op.create_index("ix_members_children_hi", "members", ["program_id", "sponsor_id", "hi"])


def downgrade() -> None:
    op.drop_index("ix_members_children_hi", "members")
    op.drop_index("ix_members_depth_lo", "members")
    op.drop_index("ix_members_hi", "members")
    op.drop_index("ix_members_lo", "members")
    for column in ("depth", "hi", "lo"):
        op.drop_column("members", column)
