"""Periods: closing a month, its summary, and the members' statements.

A close loads what it needs, decides through service/domain/closing.py and writes through
service/db/periods.py, in the caller's one transaction: a crash leaves the period open and
nothing written. It is the one place where period-end work runs: ranks and bonuses
(service/services/leadership.py) first, then the statements, which add up the period's
lines, bonus lines included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import members as member_sql
from service.db import periods as period_sql
from service.db import ranks as rank_sql
from service.db.periods import BonusLineRow, LevelTotals, PeriodTotals, StatementRow
from service.db.programs import ProgramRow
from service.domain.bonuses import BonusKind
from service.domain.closing import CloseRefusal, refusal_to_close
from service.domain.money import format_money, minor_unit
from service.domain.periods import PeriodError, has_ended, next_period, parse_period, period_bounds
from service.domain.ranks import rank_name
from service.errors import (
    EarlierPeriodOpen,
    InvalidPeriod,
    MemberNotFound,
    PeriodNotEnded,
    PeriodSettled,
    ServiceError,
)
from service.services import plans
from service.services.leadership import Decision, decide_period
from service.services.plans import PlanVersion

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PeriodSummary:
    """A period's figures: `closed_at` is None while it is open (then the figures are what a
    close would decide now). `ranks` counts the members paid as each rank; `bonuses` adds
    up the bonus lines by kind of bonus (a kind without a line is absent)."""

    period: str
    closed_at: datetime | None
    totals: PeriodTotals
    ranks: dict[str, int]
    bonuses: dict[str, Decimal]

    @property
    def status(self) -> str:
        return "open" if self.closed_at is None else "closed"


@dataclass(frozen=True, slots=True)
class PeriodPage:
    items: list[PeriodSummary]
    has_more: bool


@dataclass(frozen=True, slots=True)
class StatementPage:
    items: list[StatementRow]
    has_more: bool


@dataclass(frozen=True, slots=True)
class MemberStatement:
    period: str
    status: str
    statement: StatementRow
    levels: list[LevelTotals]
    bonus_lines: list[BonusLineRow]


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def summary_json(summary: PeriodSummary, currency: str) -> dict[str, Any]:
    """A period's summary as the API and the CLI print it: money with the currency's digits,
    every kind of bonus present (zero without a line)."""
    totals = summary.totals

    def money(value: Decimal) -> str:
        return format_money(value, currency)

    return {
        "period": summary.period,
        "status": summary.status,
        "closed_at": None if summary.closed_at is None else _instant(summary.closed_at),
        "currency": currency,
        "volume": money(totals.volume),
        "ranks": dict(summary.ranks),
        "totals": {
            "personal": money(totals.personal),
            "override": money(totals.override),
            "reversal": money(totals.reversal),
            "bonus": {kind.value: money(summary.bonuses.get(kind, ZERO)) for kind in BonusKind},
            "earned": money(totals.earned),
            "carried_in": money(totals.carried_in),
            "payable": money(totals.payable),
            "carried_forward": money(totals.carried_forward),
        },
        "statements": totals.statements,
    }


def valid_period(text: str) -> str:
    try:
        return parse_period(text)
    except PeriodError as error:
        raise InvalidPeriod(str(error)) from error


def _stored_figures(
    totals: PeriodTotals, ranks: dict[str, int], bonuses: dict[str, Decimal]
) -> dict[str, Any]:
    """A close's figures as stored with it: exact decimal text, not an API's formatting."""
    figures: dict[str, Any] = {
        f.name: f"{getattr(totals, f.name):f}" for f in fields(totals) if f.name != "statements"
    }
    figures["statements"] = totals.statements
    figures["ranks"] = ranks
    figures["bonuses"] = {kind: f"{amount:f}" for kind, amount in bonuses.items()}
    return figures


def _summary_of(row: period_sql.ClosedPeriodRow) -> PeriodSummary:
    stored = row.summary
    money = {
        f.name: Decimal(stored[f.name]) for f in fields(PeriodTotals) if f.name != "statements"
    }
    totals = PeriodTotals(statements=int(stored["statements"]), **money)
    bonuses = {kind: Decimal(amount) for kind, amount in stored.get("bonuses", {}).items()}
    return PeriodSummary(
        period=row.period,
        closed_at=row.closed_at,
        totals=totals,
        ranks=dict(stored["ranks"]),
        bonuses=bonuses,
    )


async def governing_version(
    session: AsyncSession, program: ProgramRow, period: str
) -> PlanVersion | None:
    """The plan version in force at the period's last instant: it governs the period's
    ranks, bonuses and payout minimum."""
    _, end = period_bounds(period, program.timezone)
    return await plans.in_force(
        session, program.program_id, program.currency, end - timedelta(microseconds=1)
    )


async def _payout_minimum(
    session: AsyncSession, program: ProgramRow, period: str
) -> Decimal | None:
    """The payout minimum of the plan version in force at the period's last instant."""
    version = await governing_version(session, program, period)
    return None if version is None else version.plan.payout_minimum


_REFUSALS: dict[CloseRefusal, type[ServiceError]] = {
    CloseRefusal.NOT_ENDED: PeriodNotEnded,
    CloseRefusal.EARLIER_PERIOD_OPEN: EarlierPeriodOpen,
    CloseRefusal.SETTLED: PeriodSettled,
}


def _refuse(
    refusal: CloseRefusal, period: str, open_from: str | None, earliest: str | None
) -> None:
    message = {
        CloseRefusal.NOT_ENDED: f"period {period} has not ended yet",
        CloseRefusal.EARLIER_PERIOD_OPEN: f"period {earliest} holds activity and is still open",
        CloseRefusal.SETTLED: f"every period before {open_from} is settled: {period} can no"
        " longer close on its own",
    }[refusal]
    raise _REFUSALS[refusal](message)


async def close_period(
    session: AsyncSession, program: ProgramRow, period: str, *, dry_run: bool, now: datetime
) -> PeriodSummary:
    """Close the period: decide every member's rank and the bonuses they pay, write every
    member's statement and mark the period closed, in the caller's transaction; answer its
    summary. Refused before the period's last instant has passed (checked first), and while
    an earlier period holding activity is open. A period closed already answers its close
    as it was, and changes nothing: closes of a program take its lock one at a time, so a
    close racing another waits and then answers the first's summary. The lock also keeps
    sales and refunds from booking into the period while it closes: they wait, then book
    in the next period. With `dry_run` the close is done inside a savepoint that is then
    rolled back: the summary is exactly the close's, and nothing is kept. A dry run takes
    the program's lock as a close does, so it neither races a close (it waits, then answers
    that close) nor sees a sale half booked."""
    program_id = program.program_id
    if not has_ended(period, program.timezone, now):
        _refuse(CloseRefusal.NOT_ENDED, period, None, None)
    open_from = await period_sql.lock_for_close(session, program_id)
    closed = await period_sql.get_closed(session, program_id, period)
    if closed is not None:
        return _summary_of(closed)
    earliest = await period_sql.earliest_open_with_activity(
        session, program_id, open_from=open_from, period=period
    )
    refusal = refusal_to_close(
        period, ended=True, open_from=open_from, earliest_open_with_activity=earliest
    )
    if refusal is not None:
        _refuse(refusal, period, open_from, earliest)
    version = await governing_version(session, program, period)
    if dry_run:
        trial = await session.begin_nested()
        try:
            return await _settle(session, program, period, version, closed_at=None)
        finally:
            await trial.rollback()
    summary = await _settle(session, program, period, version, closed_at=now)
    await period_sql.record_close(
        session,
        program_id,
        period=period,
        next_open=next_period(period),
        closed_at=now,
        summary=_stored_figures(summary.totals, summary.ranks, summary.bonuses),
    )
    return summary


async def _settle(
    session: AsyncSession,
    program: ProgramRow,
    period: str,
    version: PlanVersion | None,
    *,
    closed_at: datetime | None,
) -> PeriodSummary:
    """The period's end-of-period work, written: under a plan with ranks, every member's
    rank and the bonus lines, then (always) the statements, which add up every line. The
    period's lines are read once, into the close's earnings by member, which the ranks and
    the statements then read (with the bonuses added)."""
    program_id = program.program_id
    await period_sql.gather_earnings(session, program_id, period)
    ranks: dict[str, int] = {}
    bonuses: dict[str, Decimal] = {}
    held = await rank_sql.held_ranks(session, program_id)
    given: dict[str, tuple[str | None, str | None]] = {}
    if version is not None and version.plan.ranks:
        plan = version.plan
        decision = await decide_period(session, program, period, plan, held)
        await _write_leadership(session, program_id, period, version.version, decision)
        ranks = decision.rank_counts(plan)
        bonuses = decision.bonuses
        given = {
            member_id: (
                rank_name(plan.ranks, rank),
                rank_name(plan.ranks, decision.achieved[member_id]),
            )
            for member_id, rank in decision.ranked.items()
        }
    await rank_sql.set_member_ranks(session, program_id, _rank_changes(held, given))
    minimum = None if version is None else version.plan.payout_minimum
    totals = await period_sql.write_statements(session, program_id, period, minimum=minimum)
    return PeriodSummary(
        period=period, closed_at=closed_at, totals=totals, ranks=ranks, bonuses=bonuses
    )


def _rank_changes(
    held: dict[str, tuple[str | None, str | None]],
    given: dict[str, tuple[str | None, str | None]],
) -> dict[str, tuple[str | None, str | None]]:
    """What the close sets on members, from the (rank in force, achieved rank) each holds
    and each is `given` by the period (members paid a rank): the given pair, and no rank in
    force for a member holding one whom the period gives none (their achieved rank kept);
    members already right are left out."""
    changes = {member: pair for member, pair in given.items() if held.get(member) != pair}
    for member, (rank, achieved) in held.items():
        if rank is not None and member not in given:
            changes[member] = (None, achieved)
    return changes


async def _write_leadership(
    session: AsyncSession,
    program_id: str,
    period: str,
    plan_version: int,
    decision: Decision,
) -> None:
    """The period's rank rows (members with any figure), its bonus lines (added to the
    close's earnings) and the advancements they pay."""
    rows = decision.rank_rows() if decision.rank_units is None else decision.rank_units()
    await rank_sql.write_ranks(session, program_id, period, rows)
    await rank_sql.write_bonus_lines(
        session, program_id, period, plan_version, decision.bonus_lines
    )
    await rank_sql.write_advancements(session, program_id, period, decision.advanced)


async def _open_summary(session: AsyncSession, program: ProgramRow, period: str) -> PeriodSummary:
    minimum = await _payout_minimum(session, program, period)
    totals = await period_sql.compute_totals(session, program.program_id, period, minimum=minimum)
    return PeriodSummary(period=period, closed_at=None, totals=totals, ranks={}, bonuses={})


async def get_period(session: AsyncSession, program: ProgramRow, period: str) -> PeriodSummary:
    """The period's summary: as closed, or what is booked so far while open."""
    closed = await period_sql.get_closed(session, program.program_id, period)
    if closed is not None:
        return _summary_of(closed)
    return await _open_summary(session, program, period)


async def list_periods(
    session: AsyncSession, program: ProgramRow, *, before: str | None, limit: int
) -> PeriodPage:
    """Periods with any booked line or volume (or closed), newest first."""
    found = await period_sql.periods(
        session, program.program_id, before=before or "9999-99", limit=limit + 1
    )
    page = found[:limit]
    closed = await period_sql.closed_among(session, program.program_id, page)
    items = [
        _summary_of(closed[p]) if p in closed else await _open_summary(session, program, p)
        for p in page
    ]
    return PeriodPage(items=items, has_more=len(found) > limit)


async def _state(
    session: AsyncSession, program: ProgramRow, period: str
) -> tuple[bool, Decimal | None]:
    closed = await period_sql.get_closed(session, program.program_id, period) is not None
    minimum = None if closed else await _payout_minimum(session, program, period)
    return closed, minimum


async def statements(
    session: AsyncSession, program: ProgramRow, period: str, *, after: str, limit: int
) -> tuple[str, StatementPage]:
    """A page of the period's statements in member order, with the period's status."""
    closed, minimum = await _state(session, program, period)
    rows = await period_sql.statements_page(
        session,
        program.program_id,
        period,
        closed=closed,
        minimum=minimum,
        after=after,
        limit=limit + 1,
    )
    status = "closed" if closed else "open"
    return status, StatementPage(items=rows[:limit], has_more=len(rows) > limit)


async def statement_csv_batches(
    sessions: async_sessionmaker[AsyncSession], program: ProgramRow, period: str
) -> AsyncIterator[Sequence[Sequence[str | None]]]:
    """Every statement of the period as the rows of its CSV (the statement's fields, then
    the currency), in member order, batch by batch, read in a session of its own (a
    streamed answer outlives the request's): memory is one batch's."""
    async with sessions() as session, session.begin():
        closed, minimum = await _state(session, program, period)
        async for batch in period_sql.stream_statement_cells(
            session,
            program.program_id,
            period,
            closed=closed,
            minimum=minimum,
            currency=program.currency,
            digits=minor_unit(program.currency),
        ):
            yield batch


def _empty_statement(member_id: str, name: str | None) -> StatementRow:
    return StatementRow(
        member_id=member_id,
        name=name,
        rank=None,
        personal=ZERO,
        override=ZERO,
        reversal=ZERO,
        bonus=ZERO,
        earned=ZERO,
        carried_in=ZERO,
        payable=ZERO,
        carried_out=ZERO,
    )


async def member_statement(
    session: AsyncSession, program: ProgramRow, member_id: str, period: str
) -> MemberStatement:
    """One member's statement of the period, with their lines added up per paid level. A
    member with nothing booked and nothing carried in has an empty statement."""
    member = await member_sql.get_member(session, program.program_id, member_id)
    if member is None:
        raise MemberNotFound(f"member {member_id!r} does not exist")
    closed, minimum = await _state(session, program, period)
    row = await period_sql.member_statement(
        session, program.program_id, period, member_id, closed=closed, minimum=minimum
    )
    levels = await period_sql.member_levels(session, program.program_id, member_id, period)
    bonus_lines = await period_sql.member_bonus_lines(
        session, program.program_id, member_id, period
    )
    return MemberStatement(
        period=period,
        status="closed" if closed else "open",
        statement=row or _empty_statement(member_id, member.name),
        levels=levels,
        bonus_lines=bonus_lines,
    )
