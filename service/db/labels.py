"""SQL that keeps the tree's interval labels (service/domain/labels.py) in step with the
adjacency list, in the same transaction as each enrolment and move."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.domain.labels import GROWTH, MAX_LABEL, assign


@dataclass(slots=True)
class Slot:
    """Where a member sits: its labels, its depth, the last label used inside it so far
    (its own `lo` while it has no recruits) and how many recruits are placed inside."""

    lo: int
    hi: int
    depth: int
    last: int
    placed: int


ROOT_SLOT_DEPTH = -1
"""The virtual root above every root of the forest."""

_SLOTS = text(
    """
    SELECT m.member_id, m.lo, m.hi, m.depth,
           COALESCE((SELECT max(c.hi) FROM members c
                     WHERE c.program_id = m.program_id AND c.sponsor_id = m.member_id),
                    m.lo) AS last,
           (SELECT count(*) FROM members c
            WHERE c.program_id = m.program_id AND c.sponsor_id = m.member_id) AS placed
    FROM members m
    WHERE m.program_id = :program_id AND m.member_id = ANY(CAST(:member_ids AS text[]))
    """
)

_ROOTS = text(
    "SELECT COALESCE(max(hi), 0) AS last, count(*) AS placed FROM members"
    " WHERE program_id = :program_id AND sponsor_id IS NULL"
)


async def slots(session: AsyncSession, program_id: str, member_ids: list[str]) -> dict[str, Slot]:
    """The slots of these members, in one query."""
    if not member_ids:
        return {}
    rows = await session.execute(_SLOTS, {"program_id": program_id, "member_ids": member_ids})
    return {
        r.member_id: Slot(lo=r.lo, hi=r.hi, depth=r.depth, last=r.last, placed=r.placed)
        for r in rows
    }


async def root_slot(session: AsyncSession, program_id: str) -> Slot:
    roots = (await session.execute(_ROOTS, {"program_id": program_id})).one()
    return Slot(
        lo=0, hi=MAX_LABEL, depth=ROOT_SLOT_DEPTH, last=int(roots.last), placed=int(roots.placed)
    )


# Finds the smallest window of 2**e labels around :before (e from 24 up) that is sparse
# enough for its labels and :room more (see service/domain/labels.py `roomy`), and spreads
# its labels out again: those before :before over its first quarter, the others over its
# last quarter, leaving the middle half free just before :before, where the next members
# of that sponsor (and their recruits) will go. One statement, one round trip.
_MAKE_ROOM = text(
    """
    WITH chosen AS (
        SELECT w.low, w.high, c.labels, c.below
        FROM generate_series(:first_exponent, 63) AS e
        CROSS JOIN LATERAL (
            SELECT CAST(greatest(1, CAST(:before AS bigint) - power(2::numeric, e) / 2)
                        AS bigint) AS low
        ) l
        CROSS JOIN LATERAL (
            SELECT l.low,
                   CAST(least(CAST(:max_label AS bigint) - 1, l.low + power(2::numeric, e))
                        AS bigint) AS high
        ) w
        CROSS JOIN LATERAL (
            SELECT (SELECT count(*) FROM members WHERE program_id = :program_id
                        AND lo BETWEEN w.low AND w.high)
                 + (SELECT count(*) FROM members WHERE program_id = :program_id
                        AND hi BETWEEN w.low AND w.high) AS labels,
                   (SELECT count(*) FROM members WHERE program_id = :program_id
                        AND lo >= w.low AND lo < CAST(:before AS bigint))
                 + (SELECT count(*) FROM members WHERE program_id = :program_id
                        AND hi >= w.low AND hi < CAST(:before AS bigint)) AS below
        ) c
        WHERE (w.low <= 1 AND w.high >= CAST(:max_label AS bigint) - 1)
           OR (c.labels + :room) * power(CAST(:growth AS numeric), e) <= w.high - w.low
        LIMIT 1  -- the series comes in order: the first window that fits is the smallest
    ),
    labels AS (
        SELECT m.member_id, false AS is_hi, m.lo AS label FROM members m, chosen
        WHERE m.program_id = :program_id AND m.lo BETWEEN chosen.low AND chosen.high
      UNION ALL
        SELECT m.member_id, true, m.hi FROM members m, chosen
        WHERE m.program_id = :program_id AND m.hi BETWEEN chosen.low AND chosen.high
    ),
    ranked AS (
        SELECT l.member_id, l.is_hi,
               CASE WHEN l.label < CAST(:before AS bigint)
                    THEN chosen.low + row_number() OVER (ORDER BY l.label)
                         * ((chosen.high - chosen.low) / 4 / (chosen.below + 1))
                    ELSE chosen.high - (chosen.high - chosen.low) / 4
                         + (row_number() OVER (ORDER BY l.label) - chosen.below)
                         * ((chosen.high - chosen.low) / 4
                            / (chosen.labels - chosen.below + 1))
               END AS label
        FROM labels l, chosen
    ),
    moved AS (
        SELECT member_id, max(label) FILTER (WHERE NOT is_hi) AS lo,
               max(label) FILTER (WHERE is_hi) AS hi
        FROM ranked GROUP BY member_id
    ),
    updated AS (
        UPDATE members m SET lo = COALESCE(moved.lo, m.lo), hi = COALESCE(moved.hi, m.hi)
        FROM moved
        WHERE m.program_id = :program_id AND m.member_id = moved.member_id
        RETURNING 1
    )
    SELECT chosen.low + (chosen.high - chosen.low) / 4 AS gap_low,
           chosen.high - (chosen.high - chosen.low) / 4 AS gap_high,
           (SELECT count(*) FROM updated) AS relabelled
    FROM chosen
    """
)


FIRST_WINDOW_EXPONENT = 24
"""Relabelling starts from windows of 2**24 labels: the gap it opens takes about a dozen
nested or sibling enrolments before the next relabelling. Measured on 10,000 bench
enrolments: 2**24 gave 435 relabellings of 23 ms; 2**30 and 2**40 fewer but dearer ones
(they move more labels of the same cluster), slower in all."""


async def make_room(
    session: AsyncSession, program_id: str, *, before: int, room: int
) -> tuple[int, int]:
    """Relabel the smallest sparse-enough window around `before` so that a wide gap of free
    labels lies just before it; answers the gap's bounds (exclusive), with room for at
    least `room` labels."""
    # Planned for the actual window: a generic plan of this statement scans every label.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    row = (
        await session.execute(
            _MAKE_ROOM,
            {
                "program_id": program_id,
                "before": before,
                "room": room,
                "max_label": MAX_LABEL,
                "growth": GROWTH,
                "first_exponent": FIRST_WINDOW_EXPONENT,
            },
        )
    ).one()
    await session.execute(text("SET LOCAL plan_cache_mode = auto"))
    return int(row.gap_low), int(row.gap_high)


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
    gap_low, gap_high = await make_room(session, program_id, before=target.hi, room=2 * int(size))
    step = (gap_high - gap_low) // (2 * int(size) + 1)
    first = gap_low + step
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
