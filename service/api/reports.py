"""Reports on a member: per-level earnings, the commission ledger, and team statistics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from service.api.deps import Reader, SessionDep
from service.api.pagination import decode_cursor, encode_cursor, refused, whole_number
from service.api.problems import problem_responses
from service.api.schemas import Cursor, ListPage
from service.db.sales import LineRow
from service.domain.money import format_money, format_rate
from service.domain.periods import PeriodError, parse_period
from service.errors import InvalidCursor, InvalidPeriod, MemberNotFound
from service.intake.requests import MemberId
from service.services import reports

router = APIRouter(prefix="/v1/members", tags=["reports"])

MemberPath = Annotated[MemberId, Path(description="the member's id")]
PERIOD_PATTERN = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$"
"""YYYY-MM from 1970-01 to 9999-12: what `parse_period` takes (it answers `invalid_period`
for anything else, so the pattern is documented rather than checked twice)."""
PeriodText = Annotated[
    str,
    Query(
        description="a calendar month YYYY-MM in the program's timezone, 1970-01 to 9999-12",
        examples=["2026-11"],
        json_schema_extra={"pattern": PERIOD_PATTERN},
    ),
]


class PersonalEarnings(BaseModel):
    volume: str = Field(description="the member's own commissioned volume")
    amount: str


class OverrideLevelOut(BaseModel):
    level: int = Field(description="the paid level (after compression); 1 is the sponsor's")
    rate: str | None = Field(description="null where the lines carried different rates")
    members: int = Field(description="distinct sellers at this level who produced volume")
    sales: int
    volume: str
    amount: str


class OverridesOut(BaseModel):
    member_id: str
    period: str
    currency: str
    personal: PersonalEarnings
    levels: list[OverrideLevelOut]
    reversals: str = Field(description="taken back by refunds: zero or negative")
    total: str = Field(description="personal + every level + reversals")


class LedgerLine(BaseModel):
    id: int
    sale_id: str | None = Field(description="the sale paid (null for a bonus line)")
    refund_id: str | None
    source_member_id: str = Field(
        description="the seller; for a bonus line, the member whose volume or earnings pay it"
    )
    kind: Literal["personal", "override", "reversal", "bonus"]
    bonus: Literal["differential", "matching", "pool", "advancement"] | None = Field(
        default=None, description="the kind of bonus of a bonus line"
    )
    level: int = Field(description="genealogical distance from the seller (0 = personal)")
    paid_level: int = Field(description="the plan level paid, after compression")
    rate: str
    base: str
    amount: str
    period: str
    plan_version: int
    created_at: datetime

    @classmethod
    def of(cls, line: LineRow, currency: str) -> LedgerLine:
        return cls(
            id=line.line_id,
            sale_id=line.sale_id,
            refund_id=line.refund_id,
            source_member_id=line.source_member_id,
            kind=line.kind,
            bonus=line.bonus,
            level=line.level,
            paid_level=line.paid_level,
            rate=format_rate(line.rate),
            base=format_money(line.base, currency),
            amount=format_money(line.amount, currency),
            period=line.period,
            plan_version=line.plan_version,
            created_at=line.created_at,
        )


class DownlineLevelOut(BaseModel):
    level: int
    members: int
    active: int
    new: int = Field(description="enrolled within the period")
    volume: str = Field(description="net volume of the level's members in the period")


class DownlineStatsOut(BaseModel):
    member_id: str
    period: str
    total_members: int = Field(description="everyone below the member, now")
    active_members: int
    max_depth: int = Field(description="the deepest level below the member; 0 without a team")
    new_members: int = Field(description="enrolled within the period")
    personal_volume: str = Field(description="the member's own net volume in the period")
    group_volume: str = Field(description="everyone below the member; own volume excluded")
    residual_volume: str = Field(description="the part of group_volume from recurring sales")
    levels: list[DownlineLevelOut]


def _period(text: str) -> str:
    try:
        return parse_period(text)
    except PeriodError as error:
        raise InvalidPeriod(str(error)) from error


@router.get("/{member_id}/overrides", responses=problem_responses(MemberNotFound, InvalidPeriod))
async def get_overrides(
    member_id: MemberPath, session: SessionDep, caller: Reader, period: PeriodText
) -> OverridesOut:
    """What the member earned in the period: personal commission, overrides per paid level,
    refunds taken back, and the total."""
    found = await reports.overrides(session, caller.program_id, member_id, period=_period(period))
    currency = caller.program.currency
    return OverridesOut(
        member_id=member_id,
        period=period,
        currency=currency,
        personal=PersonalEarnings(
            volume=format_money(found.personal_volume, currency),
            amount=format_money(found.personal_amount, currency),
        ),
        levels=[
            OverrideLevelOut(
                level=x.level,
                rate=None if x.rate is None else format_rate(x.rate),
                members=x.members,
                sales=x.sales,
                volume=format_money(x.volume, currency),
                amount=format_money(x.amount, currency),
            )
            for x in found.levels
        ],
        reversals=format_money(found.reversals, currency),
        total=format_money(found.total, currency),
    )


@router.get(
    "/{member_id}/commissions",
    responses=problem_responses(MemberNotFound, InvalidPeriod, InvalidCursor),
)
async def get_commissions(
    member_id: MemberPath,
    session: SessionDep,
    caller: Reader,
    period: Annotated[
        str | None,
        Query(
            description="only the lines booked in this month (YYYY-MM, 1970-01 to 9999-12)",
            examples=["2026-11"],
            json_schema_extra={"pattern": PERIOD_PATTERN},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> ListPage[LedgerLine]:
    """The member's commission lines (earned, or given back by refunds), oldest first."""
    if period is not None:
        period = _period(period)
    key = caller.program.cursor_key
    after_line_id = 0
    if cursor is not None:
        # A cursor is only valid for the member and the period filter that gave it out.
        of_member, of_period, position = decode_cursor(key, cursor, "commissions", 3)
        if of_member != member_id or of_period != period:
            raise refused()
        after_line_id = whole_number(position, minimum=1)
    page = await reports.commissions(
        session,
        caller.program_id,
        member_id,
        period=period,
        after_line_id=after_line_id,
        limit=limit,
    )
    next_cursor = None
    if page.has_more:
        last = page.items[-1].line_id
        next_cursor = encode_cursor(key, "commissions", member_id, period, last)
    currency = caller.program.currency
    return ListPage[LedgerLine](
        items=[LedgerLine.of(x, currency) for x in page.items], next_cursor=next_cursor
    )


@router.get(
    "/{member_id}/downline/stats",
    response_model=DownlineStatsOut,
    responses=problem_responses(MemberNotFound, InvalidPeriod),
)
async def get_downline_stats(
    member_id: MemberPath, session: SessionDep, caller: Reader, period: PeriodText
) -> Response:
    """The team below the member as it stands now, with its net volume in the period."""
    stats = await reports.downline_stats(session, caller.program, member_id, period=_period(period))
    currency = caller.program.currency
    head = json.dumps(
        {
            "member_id": member_id,
            "period": period,
            "total_members": stats.total_members,
            "active_members": stats.active_members,
            "max_depth": stats.max_depth,
            "new_members": stats.new_members,
            "personal_volume": format_money(stats.personal_volume, currency),
            "group_volume": format_money(stats.group_volume, currency),
            "residual_volume": format_money(stats.residual_volume, currency),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    # The levels come as a JSON array made by PostgreSQL: a deep chain has thousands.
    return Response(f'{head[:-1]},"levels":{stats.levels}}}', media_type="application/json")
