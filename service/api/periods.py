"""Periods: their summaries, closing one, and the members' statements."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from service.api.deps import Admin, Reader, SessionDep
from service.api.pagination import decode_cursor, encode_cursor
from service.api.problems import problem_responses
from service.api.schemas import Cursor, ListPage
from service.db.periods import StatementRow
from service.domain.money import format_money, format_rate
from service.errors import (
    EarlierPeriodOpen,
    InvalidCursor,
    InvalidPeriod,
    MemberNotFound,
    PeriodNotEnded,
    PeriodSettled,
)
from service.intake.requests import MemberId
from service.services import periods
from service.services.periods import PeriodSummary
from service.services.programs import Principal

router = APIRouter(prefix="/v1", tags=["periods"])

PeriodPath = Annotated[
    str, Path(description="a calendar month in the program's timezone", examples=["2026-11"])
]

STATEMENT_FIELDS = (
    "member_id",
    "name",
    "rank",
    "personal",
    "override",
    "reversal",
    "bonus",
    "earned",
    "carried_in",
    "payable",
    "carried_out",
)
_MONEY_FIELDS = STATEMENT_FIELDS[3:]


class BonusTotals(BaseModel):
    differential: str
    matching: str
    pool: str
    advancement: str


class PeriodTotalsOut(BaseModel):
    personal: str
    override: str
    reversal: str = Field(description="taken back by refunds: zero or negative")
    bonus: BonusTotals
    earned: str = Field(description="the sum of the period's lines")
    carried_in: str
    payable: str
    carried_forward: str = Field(description="payable + carried_forward = carried_in + earned")


class PeriodOut(BaseModel):
    period: str
    status: Literal["open", "closed"]
    closed_at: datetime | None
    currency: str
    volume: str = Field(description="net volume booked in the period")
    ranks: dict[str, int] = Field(description="members paid as each rank held by anyone")
    totals: PeriodTotalsOut
    statements: int = Field(description="members with a statement")

    @classmethod
    def of(cls, summary: PeriodSummary, currency: str) -> PeriodOut:
        return cls.model_validate(periods.summary_json(summary, currency))


class StatementOut(BaseModel):
    member_id: str
    name: str | None
    rank: str | None = Field(description="the member's paid-as rank in the period")
    personal: str
    override: str
    reversal: str
    bonus: str = Field(description="the period's bonus lines of every kind")
    earned: str = Field(description="the sum of the member's lines booked in the period")
    carried_in: str = Field(description="carried out of the previous close; negative: a debt")
    payable: str
    carried_out: str = Field(description="not payable: below the payout minimum, or a debt")

    @classmethod
    def of(cls, row: StatementRow, currency: str) -> StatementOut:
        return cls(**_statement_fields(row, currency))


def _statement_fields(row: StatementRow, currency: str) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(row, name) for name in STATEMENT_FIELDS}
    for name in _MONEY_FIELDS:
        values[name] = format_money(values[name], currency)
    return values


class StatementsPage(ListPage[StatementOut]):
    period: str
    status: Literal["open", "closed"]
    currency: str


class LevelTotalsOut(BaseModel):
    level: int = Field(description="the paid level; 0 is personal")
    earned: str
    reversal: str
    total: str


class BonusLineOut(BaseModel):
    """One bonus line, explained: on whose volume or earnings it is paid, how far below the
    earner (sponsor generations for matching; 0 for the earner's own volume, the pool and
    advancement), the base and the rate."""

    bonus: Literal["differential", "matching", "pool", "advancement"]
    source_member_id: str
    level: int
    base: str = Field(
        description="differential: the source's personal volume; matching: what "
        "the source earned; pool: the pool; advancement: the rank's bonus"
    )
    rate: str = Field(description="pool: the earner's share of every share held")
    amount: str


class MemberStatementOut(StatementOut):
    period: str
    status: Literal["open", "closed"]
    currency: str
    bonus_lines: list[BonusLineOut] = Field(description="the period's bonus lines")
    levels: list[LevelTotalsOut]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/periods", responses=problem_responses(InvalidCursor, InvalidPeriod))
async def list_periods(
    session: SessionDep,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 12,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> ListPage[PeriodOut]:
    """The periods with any booked line or volume, newest first, with status and totals
    (for an open period, what is booked so far)."""
    before = None
    if cursor is not None:
        (position,) = decode_cursor(caller.program.cursor_key, cursor, "periods", 1)
        if not isinstance(position, str):
            raise InvalidCursor("the cursor is not one this list gave out")
        before = periods.valid_period(position)
    page = await periods.list_periods(session, caller.program, before=before, limit=limit)
    currency = caller.program.currency
    next_cursor = None
    if page.has_more:
        next_cursor = encode_cursor(caller.program.cursor_key, "periods", page.items[-1].period)
    return ListPage[PeriodOut](
        items=[PeriodOut.of(s, currency) for s in page.items], next_cursor=next_cursor
    )


@router.get("/periods/{period}", responses=problem_responses(InvalidPeriod))
async def get_period(period: PeriodPath, session: SessionDep, caller: Reader) -> PeriodOut:
    """One period: status, `closed_at`, totals and members per rank."""
    summary = await periods.get_period(session, caller.program, periods.valid_period(period))
    return PeriodOut.of(summary, caller.program.currency)


@router.post(
    "/periods/{period}/close",
    responses=problem_responses(PeriodNotEnded, EarlierPeriodOpen, PeriodSettled, InvalidPeriod),
)
async def close_period(
    period: PeriodPath,
    session: SessionDep,
    caller: Admin,
    dry_run: Annotated[
        bool, Query(description="compute and answer the summary, write nothing")
    ] = False,
) -> PeriodOut:
    """Close the period once its last instant has passed: every member's statement is
    written and nothing in the period changes again. A period closed already answers its
    close's summary. Refused with 409 `period_not_ended` before the period has ended, and
    with 409 `earlier_period_open` while an earlier period holding activity is open."""
    summary = await periods.close_period(
        session, caller.program, periods.valid_period(period), dry_run=dry_run, now=_now()
    )
    return PeriodOut.of(summary, caller.program.currency)


def _csv_rows(rows: Iterable[Sequence[str | None]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def _statements_csv(request: Request, caller: Principal, period: str) -> AsyncIterator[str]:
    yield _csv_rows([[*STATEMENT_FIELDS, "currency"]])
    async for batch in periods.statement_csv_batches(
        request.app.state.sessionmaker, caller.program, period
    ):
        yield _csv_rows(batch)


@router.get(
    "/periods/{period}/statements",
    response_model=StatementsPage,
    responses={
        200: {
            "description": "A page of statements; with `Accept: text/csv` all of them as CSV",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(InvalidPeriod, InvalidCursor),
    },
)
async def get_statements(
    period: PeriodPath,
    request: Request,
    session: SessionDep,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Any:
    """Every member's statement of the period, by member id: one per member with any line
    booked in the period or a balance carried in. For an open period, what is booked so far
    (as a close would decide it now). With `Accept: text/csv`, all of them in one CSV
    streamed in constant memory (header: the statement's fields, then `currency`)."""
    period = periods.valid_period(period)
    if "text/csv" in request.headers.get("accept", ""):
        return StreamingResponse(
            _statements_csv(request, caller, period),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="statements-{period}.csv"'},
        )
    after = ""
    if cursor is not None:
        cursor_period, after_member = decode_cursor(
            caller.program.cursor_key, cursor, "statements", 2
        )
        if cursor_period != period or not isinstance(after_member, str):
            raise InvalidCursor("the cursor is not one this list gave out")
        after = after_member
    status, page = await periods.statements(
        session, caller.program, period, after=after, limit=limit
    )
    currency = caller.program.currency
    next_cursor = None
    if page.has_more:
        next_cursor = encode_cursor(
            caller.program.cursor_key, "statements", period, page.items[-1].member_id
        )
    return StatementsPage(
        period=period,
        status="open" if status == "open" else "closed",
        currency=currency,
        items=[StatementOut.of(row, currency) for row in page.items],
        next_cursor=next_cursor,
    )


@router.get(
    "/members/{member_id}/statements/{period}",
    responses=problem_responses(MemberNotFound, InvalidPeriod),
)
async def get_member_statement(
    member_id: Annotated[MemberId, Path(description="the member's id")],
    period: PeriodPath,
    session: SessionDep,
    caller: Reader,
) -> MemberStatementOut:
    """One member's statement of the period, with its bonus lines and totals per paid
    level; for an open period, what is booked so far."""
    found = await periods.member_statement(
        session, caller.program, member_id, periods.valid_period(period)
    )
    currency = caller.program.currency
    return MemberStatementOut(
        **_statement_fields(found.statement, currency),
        period=found.period,
        status="open" if found.status == "open" else "closed",
        currency=currency,
        bonus_lines=[
            BonusLineOut(
                bonus=line.bonus,
                source_member_id=line.source_member_id,
                level=line.level,
                base=format_money(line.base, currency),
                rate=format_rate(line.rate),
                amount=format_money(line.amount, currency),
            )
            for line in found.bonus_lines
        ],
        levels=[
            LevelTotalsOut(
                level=x.level,
                earned=format_money(x.earned, currency),
                reversal=format_money(x.reversal, currency),
                total=format_money(x.total, currency),
            )
            for x in found.levels
        ],
    )
