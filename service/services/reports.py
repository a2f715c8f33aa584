"""Reports for dashboards: what a member earned per level, their ledger, and their team."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import members as member_sql
from service.db import reports as report_sql
from service.db.programs import ProgramRow
from service.db.reports import TeamStats
from service.db.sales import LineRow
from service.domain.money import minor_unit
from service.domain.periods import period_bounds
from service.errors import InvalidCursor, MemberNotFound

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OverrideLevel:
    """Override lines at one paid level; `rate` is None when they were paid at several."""

    level: int
    rate: Decimal | None
    members: int
    sales: int
    volume: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Overrides:
    personal_volume: Decimal
    personal_amount: Decimal
    levels: list[OverrideLevel]
    reversals: Decimal

    @property
    def total(self) -> Decimal:
        return self.personal_amount + sum((x.amount for x in self.levels), ZERO) + self.reversals


@dataclass(frozen=True, slots=True)
class LinePage:
    items: list[LineRow]
    has_more: bool


async def _require_member(session: AsyncSession, program_id: str, member_id: str) -> None:
    if await member_sql.get_member(session, program_id, member_id) is None:
        raise MemberNotFound(f"member {member_id!r} does not exist")


async def overrides(
    session: AsyncSession, program_id: str, member_id: str, *, period: str
) -> Overrides:
    """What the member earned in the period: personal commission, overrides per paid level
    (level 1 is paid on the sales of the members the member sponsors), and refunds taken
    back. Each figure comes from the ledger lines booked in the period."""
    groups = await report_sql.earnings_by_level(session, program_id, member_id, period)
    if not groups:  # nothing earned, or no such member
        await _require_member(session, program_id, member_id)
    personal = [g for g in groups if g.kind == "personal"]
    return Overrides(
        personal_volume=sum((g.volume for g in personal), ZERO),
        personal_amount=sum((g.amount for g in personal), ZERO),
        levels=[
            OverrideLevel(
                level=g.paid_level,
                rate=g.rate,
                members=g.members,
                sales=g.sales,
                volume=g.volume,
                amount=g.amount,
            )
            for g in groups
            if g.kind == "override"
        ],
        reversals=sum((g.amount for g in groups if g.kind == "reversal"), ZERO),
    )


async def commissions(
    session: AsyncSession,
    program_id: str,
    member_id: str,
    *,
    period: str | None,
    after_line_id: int,
    limit: int,
) -> LinePage:
    """The ledger lines the member earned (or gave back), oldest first, after the line
    `after_line_id` (0, or one of those lines)."""
    if after_line_id and not await report_sql.is_line_of_earner(
        session, program_id, member_id, period=period, line_id=after_line_id
    ):
        await _require_member(session, program_id, member_id)
        raise InvalidCursor("the cursor is not one this list gave out")
    rows = await report_sql.lines_of_earner(
        session,
        program_id,
        member_id,
        period=period,
        after_line_id=after_line_id,
        limit=limit + 1,
    )
    if not rows:  # nothing (more) earned, or no such member
        await _require_member(session, program_id, member_id)
    return LinePage(items=rows[:limit], has_more=len(rows) > limit)


async def downline_stats(
    session: AsyncSession, program: ProgramRow, member_id: str, *, period: str
) -> TeamStats:
    """The team below the member as it stands now, with each member's net volume in the
    period. A member is new when enrolled within the period, in the program's timezone."""
    start, end = period_bounds(period, program.timezone)
    stats = await report_sql.team_stats(
        session,
        program.program_id,
        member_id,
        period=period,
        start=start,
        end=end,
        digits=minor_unit(program.currency),
    )
    if stats is None:
        raise MemberNotFound(f"member {member_id!r} does not exist")
    return stats
