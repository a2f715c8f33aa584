"""SQL for periods: the program's oldest open period and its lock, closes, and statements.

Statements are computed set-based: one query adds up the period's lines by earner
(ix_commission_lines_period_earner) and joins the balances carried out of the latest closed
period. A close adds up the lines once, into a table of its own transaction that its ranks
and bonuses read too, and writes every statement from it in one INSERT ... SELECT whatever
the number of members.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.engine import temporary_table
from service.db.sales import HOLD_LABELS, lock_labels

_OPEN_FROM = text("SELECT open_from FROM programs WHERE program_id = :program_id")


async def hold_open_from(session: AsyncSession, program_id: str) -> str | None:
    """The program's oldest open period (None: no period closed), read after taking the
    program's lock shared, as every write that books into a period holds it until it
    commits: a close, which takes it alone, can then neither be in progress nor commit
    before this transaction ends. Two statements: the read's snapshot must begin after
    the lock is held."""
    await session.execute(HOLD_LABELS, {"program_id": program_id})
    return (await session.execute(_OPEN_FROM, {"program_id": program_id})).scalar_one_or_none()


# A close adds up a month's lines per member (hundreds of thousands of groups): with the
# server's default memory per sort or hash (4 MB) the plan spills to disk or walks the
# lines in index order; this much, for the close's transaction only, keeps the sums in one
# hash over one scan of the month's lines.
CLOSE_WORK_MEMORY = "256MB"
_CLOSE_MEMORY = text(f"SET LOCAL work_mem = '{CLOSE_WORK_MEMORY}'")


async def lock_for_close(session: AsyncSession, program_id: str) -> str | None:
    """Take the program's lock alone (closes of a program run one at a time, and no sale or
    refund books into a period meanwhile) and answer the oldest open period as it is then.
    The transaction's memory per sort or hash is raised to CLOSE_WORK_MEMORY."""
    await lock_labels(session, program_id)
    await session.execute(_CLOSE_MEMORY)
    return (await session.execute(_OPEN_FROM, {"program_id": program_id})).scalar_one_or_none()


_EARLIEST_ACTIVE = text(
    """
    SELECT min(period) FROM member_period_volumes
    WHERE program_id = :program_id AND period >= :open_from AND period < :period
    """
)


async def earliest_open_with_activity(
    session: AsyncSession, program_id: str, *, open_from: str | None, period: str
) -> str | None:
    """The earliest open period before `period` that holds any booked volume or line (every
    period with lines has volume rows: a sale's, or the zero row a refund writes beside
    reversal lines booked away from its volume)."""
    found: str | None = (
        await session.execute(
            _EARLIEST_ACTIVE,
            {"program_id": program_id, "open_from": open_from or "", "period": period},
        )
    ).scalar_one_or_none()
    return found


@dataclass(frozen=True, slots=True)
class ClosedPeriodRow:
    period: str
    closed_at: datetime
    summary: dict[str, Any]


async def get_closed(session: AsyncSession, program_id: str, period: str) -> ClosedPeriodRow | None:
    row = (
        await session.execute(
            text(
                "SELECT period, closed_at, summary FROM closed_periods"
                " WHERE program_id = :program_id AND period = :period"
            ),
            {"program_id": program_id, "period": period},
        )
    ).one_or_none()
    return None if row is None else ClosedPeriodRow(row.period, row.closed_at, row.summary)


async def closed_among(
    session: AsyncSession, program_id: str, periods: list[str]
) -> dict[str, ClosedPeriodRow]:
    rows = await session.execute(
        text(
            "SELECT period, closed_at, summary FROM closed_periods"
            " WHERE program_id = :program_id AND period = ANY(CAST(:periods AS text[]))"
        ),
        {"program_id": program_id, "periods": periods},
    )
    return {r.period: ClosedPeriodRow(r.period, r.closed_at, r.summary) for r in rows}


async def record_close(
    session: AsyncSession,
    program_id: str,
    *,
    period: str,
    next_open: str,
    closed_at: datetime,
    summary: dict[str, Any],
) -> None:
    """Mark the period closed with its summary; the program's oldest open period moves on."""
    await session.execute(
        text(
            """
            INSERT INTO closed_periods (program_id, period, closed_at, summary)
            VALUES (:program_id, :period, :closed_at, CAST(:summary AS jsonb))
            """
        ),
        {
            "program_id": program_id,
            "period": period,
            "closed_at": closed_at,
            "summary": _json(summary),
        },
    )
    await session.execute(
        text("UPDATE programs SET open_from = :next_open WHERE program_id = :program_id"),
        {"program_id": program_id, "next_open": next_open},
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# Periods with activity (any volume row) or closed, newest first: a skip scan of the volume
# rows' (program, period) index, one probe per distinct period, then the closed ones.
_PERIODS = text(
    """
    WITH RECURSIVE active(period) AS (
        (SELECT period FROM member_period_volumes
         WHERE program_id = :program_id AND period < :before
         ORDER BY period DESC LIMIT 1)
      UNION ALL
        SELECT (SELECT v.period FROM member_period_volumes v
                WHERE v.program_id = :program_id AND v.period < a.period
                ORDER BY v.period DESC LIMIT 1)
        FROM active a WHERE a.period IS NOT NULL
    )
    SELECT period FROM (
        SELECT period FROM active WHERE period IS NOT NULL
        UNION
        SELECT period FROM closed_periods WHERE program_id = :program_id AND period < :before
    ) p
    ORDER BY period DESC
    LIMIT :limit
    """
)


async def periods(session: AsyncSession, program_id: str, *, before: str, limit: int) -> list[str]:
    """Periods with any booked volume or line, or closed, before `before`, newest first."""
    rows = await session.execute(
        _PERIODS, {"program_id": program_id, "before": before, "limit": limit}
    )
    return [row.period for row in rows]


# The statements of a period, one per member with any line booked in it or a balance
# carried out of the latest closed period before it, in member order from `:after`. The
# payout rule is service/domain/closing.py's `settle`: the balance (carried in + earned) is
# paid once positive and at least the minimum (none: any positive balance), else carried.
# `rank` is the paid-as rank the close wrote for the member before the statements (null in
# an open period, and under a plan without ranks).
_LINE_SUMS = """
    SELECT earner_id AS member_id,
           COALESCE(sum(amount) FILTER (WHERE kind = 'personal'), 0) AS personal,
           COALESCE(sum(amount) FILTER (WHERE kind = 'override'), 0) AS override,
           COALESCE(sum(amount) FILTER (WHERE kind = 'reversal'), 0) AS reversal,
           COALESCE(sum(amount) FILTER (WHERE kind = 'bonus'), 0) AS bonus,
           sum(amount) AS earned
    FROM commission_lines
    WHERE program_id = :program_id AND period = :period AND earner_id {earners}
    GROUP BY earner_id
"""

# What a close has gathered (`gather_earnings`, then the bonus lines' sums), one row per
# member: the same sums as _LINE_SUMS, from one read of the period's lines and the bonuses
# the close decided, not from a second read of every line.
_GATHERED_SUMS = """
    SELECT member_id, personal, override, reversal, bonus,
           personal + override + reversal + bonus AS earned
    FROM close_earnings WHERE member_id {earners}
"""


def _statement_rows(earners: str, sums: str = _LINE_SUMS) -> str:
    return f"""
    WITH earned AS ({sums.format(earners=earners)}),
    carried AS (
        SELECT member_id, carried_out AS carried_in FROM statements
        WHERE program_id = :program_id AND member_id {earners} AND carried_out <> 0
          AND period = (SELECT max(period) FROM closed_periods
                        WHERE program_id = :program_id AND period < :period)
    ),
    figures AS (
        SELECT COALESCE(e.member_id, c.member_id) AS member_id,
               COALESCE(e.personal, 0) AS personal, COALESCE(e.override, 0) AS override,
               COALESCE(e.reversal, 0) AS reversal, COALESCE(e.bonus, 0) AS bonus,
               COALESCE(e.earned, 0) AS earned, COALESCE(c.carried_in, 0) AS carried_in,
               COALESCE(c.carried_in, 0) + COALESCE(e.earned, 0) AS balance
        FROM earned e FULL JOIN carried c ON c.member_id = e.member_id
    )
    SELECT CAST(:program_id AS text) AS program_id, CAST(:period AS text) AS period,
           f.member_id, m.name, r.rank, f.personal, f.override, f.reversal,
           f.bonus, f.earned, f.carried_in, p.payable, f.balance - p.payable AS carried_out
    FROM figures f
    LEFT JOIN members m ON m.program_id = :program_id AND m.member_id = f.member_id
    LEFT JOIN period_ranks r
      ON r.program_id = :program_id AND r.period = :period AND r.member_id = f.member_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN f.balance > 0
                     AND (CAST(:minimum AS numeric) IS NULL OR f.balance >= :minimum)
                    THEN f.balance ELSE 0 END AS payable
    ) p
    """  # noqa: S608 - constant SQL


_STATEMENT_ROWS = _statement_rows("> :after")
_MEMBER_STATEMENT_ROWS = _statement_rows("= :member_id")

_STATEMENT_COLUMNS = (
    "program_id, period, member_id, name, rank, personal, override, reversal, bonus, earned,"
    " carried_in, payable, carried_out"
)

_TOTALS = """
    SELECT count(*) AS statements,
           COALESCE(sum(personal), 0) AS personal, COALESCE(sum(override), 0) AS override,
           COALESCE(sum(reversal), 0) AS reversal, COALESCE(sum(bonus), 0) AS bonus,
           COALESCE(sum(earned), 0) AS earned, COALESCE(sum(carried_in), 0) AS carried_in,
           COALESCE(sum(payable), 0) AS payable,
           COALESCE(sum(carried_out), 0) AS carried_forward,
           (SELECT COALESCE(sum(volume), 0) FROM member_period_volumes
            WHERE program_id = :program_id AND period = :period) AS volume
    FROM s
"""

_WRITE_STATEMENTS = text(
    f"""
    WITH s AS (
        INSERT INTO statements ({_STATEMENT_COLUMNS})
        {_statement_rows("> :after", _GATHERED_SUMS)}
        RETURNING *
    )
    {_TOTALS}
    """
)

_COMPUTE_TOTALS = text(f"WITH s AS ({_STATEMENT_ROWS}) {_TOTALS}")

_OPEN_STATEMENTS = text(
    f"SELECT * FROM ({_STATEMENT_ROWS}) s ORDER BY member_id LIMIT :limit"  # noqa: S608
)

_OPEN_STATEMENT = text(_MEMBER_STATEMENT_ROWS)

_CLOSED_STATEMENT = text(
    f"""
    SELECT {_STATEMENT_COLUMNS} FROM statements
    WHERE program_id = :program_id AND period = :period AND member_id = :member_id
    """  # noqa: S608
)

_CLOSED_STATEMENTS = text(
    f"""
    SELECT {_STATEMENT_COLUMNS} FROM statements
    WHERE program_id = :program_id AND period = :period AND member_id > :after
    ORDER BY member_id LIMIT :limit
    """  # noqa: S608
)


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    statements: int
    personal: Decimal
    override: Decimal
    reversal: Decimal
    bonus: Decimal
    earned: Decimal
    carried_in: Decimal
    payable: Decimal
    carried_forward: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class StatementRow:
    member_id: str
    name: str | None
    rank: str | None
    personal: Decimal
    override: Decimal
    reversal: Decimal
    bonus: Decimal
    earned: Decimal
    carried_in: Decimal
    payable: Decimal
    carried_out: Decimal


def _totals(row: Any) -> PeriodTotals:
    return PeriodTotals(**{name: row._mapping[name] for name in PeriodTotals.__slots__})


def _statement(row: Any) -> StatementRow:
    return StatementRow(**{name: row._mapping[name] for name in StatementRow.__slots__})


def _parameters(
    program_id: str, period: str, minimum: Decimal | None, after: str = ""
) -> dict[str, Any]:
    return {"program_id": program_id, "period": period, "minimum": minimum, "after": after}


# The close's own table of earnings (a temporary table), one row per member: the period's
# lines added up once, by earner, then the bonus lines' sums added.
_EARNINGS = """
    member_id text NOT NULL, personal numeric NOT NULL, override numeric NOT NULL,
    reversal numeric NOT NULL, bonus numeric NOT NULL
"""
_GATHER_EARNINGS = text(
    f"""
    INSERT INTO close_earnings (member_id, personal, override, reversal, bonus)
    SELECT member_id, personal, override, reversal, bonus
    FROM ({_LINE_SUMS.format(earners="IS NOT NULL")}) s
    """  # noqa: S608 - constant SQL
)
_ANALYZE_EARNINGS = text("ANALYZE close_earnings")


async def gather_earnings(session: AsyncSession, program_id: str, period: str) -> None:
    """Add up the period's lines by earner, in one read of them, into the close's table of
    earnings (`close_earnings`, the transaction's own): the ranks and bonuses read what each
    member earned on sales from it, and `write_statements` their sums. Its statistics are
    gathered at once, for the plans of the statements that read it."""
    await temporary_table(session, "close_earnings", _EARNINGS)
    await session.execute(_GATHER_EARNINGS, {"program_id": program_id, "period": period})
    await session.execute(_ANALYZE_EARNINGS)


async def write_statements(
    session: AsyncSession, program_id: str, period: str, *, minimum: Decimal | None
) -> PeriodTotals:
    """Write every statement of the period in one statement, from the close's earnings
    (`gather_earnings`, and the bonus lines' sums, service.db.ranks.write_bonus_lines);
    answers their totals."""
    row = (await session.execute(_WRITE_STATEMENTS, _parameters(program_id, period, minimum))).one()
    return _totals(row)


async def compute_totals(
    session: AsyncSession, program_id: str, period: str, *, minimum: Decimal | None
) -> PeriodTotals:
    """The totals the statements of the period would have if it closed now (writes nothing)."""
    row = (await session.execute(_COMPUTE_TOTALS, _parameters(program_id, period, minimum))).one()
    return _totals(row)


async def statements_page(
    session: AsyncSession,
    program_id: str,
    period: str,
    *,
    closed: bool,
    minimum: Decimal | None,
    after: str,
    limit: int,
) -> list[StatementRow]:
    """Statements in member order after `after`: stored ones of a closed period, or what an
    open period's would be if it closed now."""
    parameters = {**_parameters(program_id, period, minimum, after), "limit": limit}
    statement = _CLOSED_STATEMENTS if closed else _OPEN_STATEMENTS
    rows = await session.execute(statement, parameters)
    return [_statement(row) for row in rows]


async def member_statement(
    session: AsyncSession,
    program_id: str,
    period: str,
    member_id: str,
    *,
    closed: bool,
    minimum: Decimal | None,
) -> StatementRow | None:
    """One member's statement: stored (closed period) or as it would be now (open)."""
    parameters = {**_parameters(program_id, period, minimum), "member_id": member_id}
    statement = _CLOSED_STATEMENT if closed else _OPEN_STATEMENT
    row = (await session.execute(statement, parameters)).one_or_none()
    return None if row is None else _statement(row)


_MEMBER_LEVELS = text(
    """
    SELECT paid_level AS level,
           COALESCE(sum(amount) FILTER (WHERE kind IN ('personal', 'override')), 0) AS earned,
           COALESCE(sum(amount) FILTER (WHERE kind = 'reversal'), 0) AS reversal,
           sum(amount) AS total
    FROM commission_lines
    WHERE program_id = :program_id AND earner_id = :member_id AND period = :period
      AND kind IN ('personal', 'override', 'reversal')
    GROUP BY paid_level ORDER BY paid_level
    """
)


@dataclass(frozen=True, slots=True)
class LevelTotals:
    level: int
    earned: Decimal
    reversal: Decimal
    total: Decimal


async def member_levels(
    session: AsyncSession, program_id: str, member_id: str, period: str
) -> list[LevelTotals]:
    """The member's lines of the period added up per paid level (0: personal)."""
    rows = await session.execute(
        _MEMBER_LEVELS, {"program_id": program_id, "member_id": member_id, "period": period}
    )
    return [LevelTotals(r.level, r.earned, r.reversal, r.total) for r in rows]


_MEMBER_BONUS_LINES = text(
    """
    SELECT bonus, source_member_id, level, rate, base, amount FROM commission_lines
    WHERE program_id = :program_id AND period = :period AND earner_id = :member_id
      AND kind = 'bonus'
    ORDER BY bonus, level, source_member_id, line_id
    """
)


@dataclass(frozen=True, slots=True)
class BonusLineRow:
    bonus: str
    source_member_id: str
    level: int
    rate: Decimal
    base: Decimal
    amount: Decimal


async def member_bonus_lines(
    session: AsyncSession, program_id: str, member_id: str, period: str
) -> list[BonusLineRow]:
    """The member's bonus lines of the period, by kind of bonus, level and source."""
    rows = await session.execute(
        _MEMBER_BONUS_LINES,
        {"program_id": program_id, "member_id": member_id, "period": period},
    )
    return [BonusLineRow(*row) for row in rows]


def _csv_text(column: str) -> str:
    """A free-text cell (a member's name, a rank): a spreadsheet runs one that begins like a
    formula, so such a cell is prefixed with an apostrophe (OWASP's advice for CSV exports)."""
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r')"
        f" THEN '''' || {column} ELSE {column} END"
    )


def _csv_cells(statement: TextClause) -> TextClause:
    """The statements of `statement` as the CSV prints them, cell by cell in the order of
    the CSV's header, formatted by PostgreSQL: each amount with the currency's `:digits`
    (every amount is a sum of lines in whole minor units, so rounding to them changes
    nothing), free text made safe for spreadsheets, the currency on every row."""
    amounts = ", ".join(
        f"CAST(round({name}, :digits) AS text)"
        for name in (
            "personal",
            "override",
            "reversal",
            "bonus",
            "earned",
            "carried_in",
            "payable",
            "carried_out",
        )
    )
    return text(
        f"""
        SELECT member_id, {_csv_text("name")}, {_csv_text("rank")}, {amounts},
               CAST(:currency AS text)
        FROM ({statement.text}) s
        ORDER BY member_id
        """  # noqa: S608 - constant SQL
    )


_CLOSED_CSV = _csv_cells(_CLOSED_STATEMENTS)
_OPEN_CSV = _csv_cells(_OPEN_STATEMENTS)


async def stream_statement_cells(
    session: AsyncSession,
    program_id: str,
    period: str,
    *,
    closed: bool,
    minimum: Decimal | None,
    currency: str,
    digits: int,
    batch: int = 2000,
) -> AsyncIterator[Sequence[Sequence[str | None]]]:
    """Every statement of the period as the rows of its CSV, in member order, in batches
    through a server-side cursor: memory stays that of one batch whatever the number of
    members, and no amount passes through Python's decimals."""
    parameters = {
        **_parameters(program_id, period, minimum),
        "limit": None,
        "currency": currency,
        "digits": digits,
    }
    result = await session.stream(_CLOSED_CSV if closed else _OPEN_CSV, parameters)
    async for rows in result.partitions(batch):
        yield rows
