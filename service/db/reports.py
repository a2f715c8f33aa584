"""SQL for the read-only reports: a member's ledger, per-level earnings and team statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.sales import LineRow
from service.db.tables import commission_lines

_LINE_COLUMNS = tuple(c for c in commission_lines.c if c.name != "program_id")


def _line(mapping: Any) -> LineRow:
    return LineRow(**{c.name: mapping[c.name] for c in _LINE_COLUMNS})


@dataclass(frozen=True, slots=True)
class EarningsGroup:
    """An earner's lines of one kind at one paid level in a period, added up."""

    kind: str
    paid_level: int
    rate: Decimal | None
    members: int
    sales: int
    volume: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class TeamLevel:
    """The members at one level below a member (level 0 is the member), with their net volume
    in a period."""

    level: int
    members: int
    active: int
    new: int
    volume: Decimal
    residual_volume: Decimal


# One pass over the earner's lines of the period (ix_commission_lines_earner). `rate` is null
# where the lines of a group were paid at different rates (two plan versions in one period).
_EARNINGS = text(
    """
    SELECT kind, paid_level,
           CASE WHEN min(rate) = max(rate) THEN min(rate) END AS rate,
           count(DISTINCT source_member_id) AS members,
           count(DISTINCT sale_id) AS sales,
           sum(base) AS volume,
           sum(amount) AS amount
    FROM commission_lines
    WHERE program_id = :program_id AND earner_id = :earner_id AND period = :period
      AND kind IN ('personal', 'override', 'reversal')
    GROUP BY kind, paid_level
    ORDER BY kind, paid_level
    """
)


async def earnings_by_level(
    session: AsyncSession, program_id: str, earner_id: str, period: str
) -> list[EarningsGroup]:
    """The earner's personal, override and reversal lines of the period, per kind and level."""
    rows = await session.execute(
        _EARNINGS, {"program_id": program_id, "earner_id": earner_id, "period": period}
    )
    return [
        EarningsGroup(
            kind=r.kind,
            paid_level=r.paid_level,
            rate=r.rate,
            members=int(r.members),
            sales=int(r.sales),
            volume=r.volume,
            amount=r.amount,
        )
        for r in rows
    ]


async def lines_of_earner(
    session: AsyncSession,
    program_id: str,
    earner_id: str,
    *,
    period: str | None,
    after_line_id: int,
    limit: int,
) -> list[LineRow]:
    """The earner's ledger lines in id order, strictly after `after_line_id`."""
    statement = (
        select(*_LINE_COLUMNS)
        .where(
            commission_lines.c.program_id == program_id,
            commission_lines.c.earner_id == earner_id,
            commission_lines.c.line_id > after_line_id,
        )
        .order_by(commission_lines.c.line_id)
        .limit(limit)
    )
    if period is not None:
        statement = statement.where(commission_lines.c.period == period)
    rows = await session.execute(statement)
    return [_line(r._mapping) for r in rows]


# The labels of the team's root; and, for the rest of the transaction, plans made for the
# actual label range, so that the planner sizes the team (a leaf, or a million members, whose
# scans it then runs in parallel) rather than guessing once for every range.
_TEAM_RANGE = text(
    """
    SELECT lo, hi, depth, set_config('plan_cache_mode', 'force_custom_plan', true)
    FROM members WHERE program_id = :program_id AND member_id = :root
    """
)

# The team per level (level 0 is its root, so the root's own volume comes from the same
# scans): its members by one range scan of the tree labels (ix_members_lo), and their net
# volume in the period by one range scan of the period's volume rows, which carry their
# member's labels (ix_member_period_volumes_lo).
_TEAM_BY_LEVEL = text(
    """
    WITH team AS (
        SELECT m.depth AS depth,
               count(*) AS members,
               count(*) FILTER (WHERE m.status = 'active') AS active,
               count(*) FILTER (WHERE m.enrolled_at >= :start AND m.enrolled_at < :end) AS new
        FROM members m
        WHERE m.program_id = :program_id AND m.lo >= :lo AND m.lo < :hi
        GROUP BY m.depth
    ),
    volume AS (
        SELECT v.depth AS depth,
               sum(v.volume) AS volume,
               sum(v.residual_volume) AS residual_volume
        FROM member_period_volumes v
        WHERE v.program_id = :program_id AND v.period = :period AND v.lo >= :lo AND v.lo < :hi
        GROUP BY v.depth
    )
    SELECT t.depth - :depth AS level, t.members, t.active, t.new,
           COALESCE(v.volume, 0) AS volume, COALESCE(v.residual_volume, 0) AS residual_volume
    FROM team t
    LEFT JOIN volume v ON v.depth = t.depth
    ORDER BY t.depth
    """
)


async def team_by_level(
    session: AsyncSession,
    program_id: str,
    root: str,
    *,
    period: str,
    start: datetime,
    end: datetime,
) -> list[TeamLevel] | None:
    """Per level below `root` (level 0: `root` alone): members, active ones, those enrolled
    in [start, end), and net volume in `period`. None when `root` does not exist."""
    found = (
        await session.execute(_TEAM_RANGE, {"program_id": program_id, "root": root})
    ).one_or_none()
    if found is None:
        return None
    lo, hi, depth, _ = found
    rows = (
        await session.execute(
            _TEAM_BY_LEVEL,
            {
                "program_id": program_id,
                "lo": lo,
                "hi": hi,
                "depth": depth,
                "period": period,
                "start": start,
                "end": end,
            },
        )
    ).all()
    # Fetched at once and unpacked by position: a deep chain has thousands of level rows,
    # and a row fetched alone or read by column name costs more than the query.
    return [
        TeamLevel(
            level=level,
            members=int(members),
            active=int(active),
            new=int(new),
            volume=volume,
            residual_volume=residual_volume,
        )
        for level, members, active, new, volume, residual_volume in rows
    ]
