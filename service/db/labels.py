"""SQL that keeps the tree's interval labels (service/domain/labels.py) in step with the
adjacency list, in the same transaction as each enrolment and move."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.domain.labels import MAX_LABEL, assign, roomy, window


@dataclass(slots=True)
class Slot:
    """Where a member sits: its labels, its depth, and the last label used inside it so
    far (its own `lo` while it has no recruits)."""

    lo: int
    hi: int
    depth: int
    last: int


ROOT_SLOT_DEPTH = -1
"""The virtual root above every root of the forest."""

_SLOTS = text(
    """
    SELECT m.member_id, m.lo, m.hi, m.depth,
           COALESCE((SELECT max(c.hi) FROM members c
                     WHERE c.program_id = m.program_id AND c.sponsor_id = m.member_id),
                    m.lo) AS last
    FROM members m
    WHERE m.program_id = :program_id AND m.member_id = ANY(CAST(:member_ids AS text[]))
    """
)

_ROOTS_LAST = text(
    "SELECT COALESCE(max(hi), 0) FROM members WHERE program_id = :program_id AND sponsor_id IS NULL"
)


async def slots(session: AsyncSession, program_id: str, member_ids: list[str]) -> dict[str, Slot]:
    """The slots of these members, in one query."""
    if not member_ids:
        return {}
    rows = await session.execute(_SLOTS, {"program_id": program_id, "member_ids": member_ids})
    return {r.member_id: Slot(lo=r.lo, hi=r.hi, depth=r.depth, last=r.last) for r in rows}


async def root_slot(session: AsyncSession, program_id: str) -> Slot:
    last = (await session.execute(_ROOTS_LAST, {"program_id": program_id})).scalar_one()
    return Slot(lo=0, hi=MAX_LABEL, depth=ROOT_SLOT_DEPTH, last=int(last))


_COUNT = text(
    """
    SELECT (SELECT count(*) FROM members WHERE program_id = :program_id
                AND lo BETWEEN :low AND :high)
         + (SELECT count(*) FROM members WHERE program_id = :program_id
                AND hi BETWEEN :low AND :high) AS labels,
           (SELECT count(*) FROM members WHERE program_id = :program_id
                AND lo >= :low AND lo < :before)
         + (SELECT count(*) FROM members WHERE program_id = :program_id
                AND hi >= :low AND hi < :before) AS below
    """
)

# Spreads the labels of the window evenly, in their order, leaving :room free places just
# before :before.
_RELABEL = text(
    """
    WITH labels AS (
        SELECT member_id, false AS is_hi, lo AS label FROM members
        WHERE program_id = :program_id AND lo BETWEEN :low AND :high
      UNION ALL
        SELECT member_id, true, hi FROM members
        WHERE program_id = :program_id AND hi BETWEEN :low AND :high
    ),
    ranked AS (
        SELECT member_id, is_hi,
               :low + (row_number() OVER (ORDER BY label)
                       + CASE WHEN label >= :before THEN :room ELSE 0 END) * :step AS label
        FROM labels
    ),
    moved AS (
        SELECT member_id, max(label) FILTER (WHERE NOT is_hi) AS lo,
               max(label) FILTER (WHERE is_hi) AS hi
        FROM ranked GROUP BY member_id
    )
    UPDATE members m SET lo = COALESCE(moved.lo, m.lo), hi = COALESCE(moved.hi, m.hi)
    FROM moved
    WHERE m.program_id = :program_id AND m.member_id = moved.member_id
    """
)


async def make_room(
    session: AsyncSession, program_id: str, *, before: int, room: int
) -> tuple[int, int]:
    """Relabel the smallest sparse-enough window around `before` so that `room` free labels
    lie just before it; answers (first free label, step between them)."""
    exponent = 8
    while True:
        low, high = window(before, exponent)
        counted = (
            await session.execute(
                _COUNT, {"program_id": program_id, "low": low, "high": high, "before": before}
            )
        ).one()
        if roomy(low, high, int(counted.labels) + room, exponent):
            break
        exponent += 1
    labels, below = int(counted.labels), int(counted.below)
    step = (high - low) // (labels + room + 1)
    await session.execute(
        _RELABEL,
        {
            "program_id": program_id,
            "low": low,
            "high": high,
            "before": before,
            "room": room,
            "step": step,
        },
    )
    return low + (below + 1) * step, step


# Moves a subtree's labels, in their order, onto free places first, first + step, ...
_RELOCATE = text(
    """
    WITH labels AS (
        SELECT member_id, false AS is_hi, lo AS label FROM members
        WHERE program_id = :program_id AND lo BETWEEN :lo AND :hi
      UNION ALL
        SELECT member_id, true, hi FROM members
        WHERE program_id = :program_id AND hi BETWEEN :lo AND :hi
    ),
    ranked AS (
        SELECT member_id, is_hi,
               :first + (row_number() OVER (ORDER BY label) - 1) * :step AS label
        FROM labels
    ),
    moved AS (
        SELECT member_id, max(label) FILTER (WHERE NOT is_hi) AS lo,
               max(label) FILTER (WHERE is_hi) AS hi
        FROM ranked GROUP BY member_id
    )
    UPDATE members m SET lo = moved.lo, hi = moved.hi, depth = m.depth + :depth_change
    FROM moved
    WHERE m.program_id = :program_id AND m.member_id = moved.member_id
    """
)

_SUBTREE_SIZE = text(
    "SELECT count(*) FROM members WHERE program_id = :program_id AND lo BETWEEN :lo AND :hi"
)


async def relocate_subtree(
    session: AsyncSession, program_id: str, member_id: str, new_sponsor_id: str | None
) -> None:
    """Give a moved member and their team labels inside the new sponsor, as its last child."""
    (moving,) = (await slots(session, program_id, [member_id])).values()
    size = (
        await session.execute(
            _SUBTREE_SIZE, {"program_id": program_id, "lo": moving.lo, "hi": moving.hi}
        )
    ).scalar_one()
    target = (
        await root_slot(session, program_id)
        if new_sponsor_id is None
        else (await slots(session, program_id, [new_sponsor_id]))[new_sponsor_id]
    )
    first, step = await make_room(session, program_id, before=target.hi, room=2 * int(size))
    # The relabelling may have shifted the moving labels and the target's depth is fixed.
    (moving,) = (await slots(session, program_id, [member_id])).values()
    await session.execute(
        _RELOCATE,
        {
            "program_id": program_id,
            "lo": moving.lo,
            "hi": moving.hi,
            "first": first,
            "step": step,
            "depth_change": target.depth + 1 - moving.depth,
        },
    )


_PREORDER = text(
    """
    WITH RECURSIVE walk(member_id, depth) AS (
        SELECT member_id, 0 FROM members WHERE program_id = :program_id AND sponsor_id IS NULL
      UNION ALL
        SELECT c.member_id, w.depth + 1
        FROM walk w JOIN members c ON c.program_id = :program_id AND c.sponsor_id = w.member_id
    ) SEARCH DEPTH FIRST BY member_id SET path
    SELECT member_id, depth FROM walk ORDER BY path
    """
)

_SET_LABELS = text(
    """
    UPDATE members m SET lo = n.lo, hi = n.hi, depth = n.depth
    FROM unnest(CAST(:member_ids AS text[]), CAST(:los AS bigint[]), CAST(:his AS bigint[]),
                CAST(:depths AS int[])) AS n(member_id, lo, hi, depth)
    WHERE m.program_id = :program_id AND m.member_id = n.member_id
    """
)


async def rebuild(connection: AsyncConnection | AsyncSession, program_id: str) -> int:
    """Label a program's whole forest afresh from the adjacency list (siblings by id); for
    repairs and for loading trees behind the service's back in tests. Answers the count."""
    rows = await connection.execute(_PREORDER, {"program_id": program_id})
    labelled = list(assign((r.member_id, r.depth) for r in rows))
    await connection.execute(
        _SET_LABELS,
        {
            "program_id": program_id,
            "member_ids": [m for m, _, _, _ in labelled],
            "los": [lo for _, lo, _, _ in labelled],
            "his": [hi for _, _, hi, _ in labelled],
            "depths": [d for _, _, _, d in labelled],
        },
    )
    return len(labelled)
