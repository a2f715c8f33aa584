"""SQL for ranks and bonuses: what a close reads to decide them, and what it writes.

A close reads the whole tree with each member's personal volume of the period in one
query, decides (service/compute/, or service/domain/), and writes the period's ranks and
bonus lines (a month of a million members is a few hundred thousand rows of each). Where
the arrays decided, the rows are copied as whole units into tables of the close's own
transaction, then inserted from there with their figures made exact decimals by
PostgreSQL: no Decimal is built or encoded per figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.compute.ranks import VOLUME_PLACES, Team, from_units
from service.db.engine import driver_of, temporary_table
from service.domain.ranks import MemberVolume

# Read straight through the driver (driver_of).
_TREE = """
    SELECT m.member_id, m.sponsor_id, m.status = 'active' AS active,
           COALESCE(v.volume, 0) AS personal_volume
    FROM members m
    LEFT JOIN member_period_volumes v
      ON v.program_id = m.program_id AND v.member_id = m.member_id AND v.period = $2
    WHERE m.program_id = $1
"""


async def tree_volumes(session: AsyncSession, program_id: str, period: str) -> list[MemberVolume]:
    """Every member of the program as they stand now, with their personal volume booked in
    the period (net of the refunds booked in it)."""
    rows = await (await driver_of(session)).fetch(_TREE, program_id, period)
    return [MemberVolume(r[0], r[1], r[2], r[3]) for r in rows]


# What each member earned in the period on sales, from the close's earnings (gathered by
# service.db.periods.gather_earnings, before any bonus is added to them).
_EARNED = text("SELECT member_id, personal + override + reversal FROM close_earnings")


async def earned_on_sales(session: AsyncSession) -> dict[str, Decimal]:
    """What each member earned in the close's period on sales: their personal and override
    lines net of the reversals booked in it (from the close's earnings)."""
    result = await session.execute(_EARNED)
    return {earner: amount for earner, amount in result}


_NET_VOLUME = text(
    "SELECT COALESCE(sum(volume), 0) FROM member_period_volumes"
    " WHERE program_id = :program_id AND period = :period"
)


async def net_volume(session: AsyncSession, program_id: str, period: str) -> Decimal:
    """The program's volume booked in the period, net of the refunds booked in it."""
    found: Decimal = (
        await session.execute(_NET_VOLUME, {"program_id": program_id, "period": period})
    ).scalar_one()
    return found


_HELD = (
    "SELECT member_id, rank, achieved_rank FROM members"
    " WHERE program_id = $1 AND (rank IS NOT NULL OR achieved_rank IS NOT NULL)"
)


async def held_ranks(
    session: AsyncSession, program_id: str
) -> dict[str, tuple[str | None, str | None]]:
    """Each member's rank in force and the highest rank they were ever paid as, by name
    (members holding neither left out; a close reads a hundred thousand and more)."""
    rows = await (await driver_of(session)).fetch(_HELD, program_id)
    return {row[0]: (row[1], row[2]) for row in rows}


class RankRow(NamedTuple):
    """A member's figures in a closed period and the paid-as rank they decided (a tuple: a
    close writes hundreds of thousands)."""

    member_id: str
    sponsor_id: str | None
    active: bool
    personal_volume: Decimal
    organization_volume: Decimal
    active_recruits: int
    rank: str | None
    best_rank: str | None


class BonusRow(NamedTuple):
    """A bonus line to write: booked in the close's period, under the plan version that
    governs it."""

    bonus: str
    earner_id: str
    source_member_id: str
    level: int
    rate: Decimal
    base: Decimal
    amount: Decimal


async def _copy(
    session: AsyncSession, table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]
) -> None:
    """COPY the records into the table, in the session's transaction."""
    driver = await driver_of(session)
    await driver.copy_records_to_table(table, records=records, columns=list(columns))


_RANK_COLUMNS = (
    "program_id",
    "period",
    "member_id",
    "sponsor_id",
    "active",
    "personal_volume",
    "organization_volume",
    "active_recruits",
    "rank",
    "best_rank",
)


class RankUnits(NamedTuple):
    """The period's rank rows with their volumes as whole units: each record is a RankRow
    whose volumes are integers, personal in units of 10**-personal_places, organization of
    10**-organization_places. A close writes a row for most members, and a Decimal built and
    encoded for each figure cost more than the insert."""

    records: Iterable[tuple[str, str | None, bool, int, int, int, str | None, str | None]]
    personal_places: int
    organization_places: int


def _unit(places: int) -> Decimal:
    """10**-places, exactly: a whole number of units times it has `places` decimals."""
    return from_units(1, places)


# period_ranks' columns after the program and period, the volumes as whole units.
_RANK_UNITS = """
    member_id text, sponsor_id text, active boolean, personal_volume int8,
    organization_volume int8, active_recruits int4, rank text, best_rank text
"""
_RANKS_FROM_UNITS = text(
    f"""
    INSERT INTO period_ranks ({", ".join(_RANK_COLUMNS)})
    SELECT :program_id, :period, member_id, sponsor_id, active,
           personal_volume * CAST(:personal_unit AS numeric),
           organization_volume * CAST(:organization_unit AS numeric),
           active_recruits, rank, best_rank
    FROM close_rank_units
    """  # noqa: S608 - constant SQL
)


async def write_ranks(
    session: AsyncSession, program_id: str, period: str, rows: Iterable[RankRow] | RankUnits
) -> None:
    """Write the period's rank rows (the close writes one per member with any figure): rows
    of Decimals are copied as they are; RankUnits are copied as integers into a table of
    the transaction's own, then inserted with their volumes made exact decimals there."""
    if not isinstance(rows, RankUnits):
        await _copy(
            session, "period_ranks", _RANK_COLUMNS, ((program_id, period, *r) for r in rows)
        )
        return
    await temporary_table(session, "close_rank_units", _RANK_UNITS)
    await _copy(session, "close_rank_units", _RANK_COLUMNS[2:], rows.records)
    await session.execute(
        _RANKS_FROM_UNITS,
        {
            "program_id": program_id,
            "period": period,
            "personal_unit": _unit(rows.personal_places),
            "organization_unit": _unit(rows.organization_places),
        },
    )


class UnitLines(NamedTuple):
    """Bonus lines of one kind with their figures as whole units (a close writes hundreds of
    thousands, and a Decimal built and encoded for each figure cost more than the insert):
    who earns and on whose figures, the level, the rate as an index into `rates`, the base
    in units of 10**-base_places and the amount in units of 10**-amount_places."""

    bonus: str
    earner_id: list[str]
    source_member_id: list[str]
    level: list[int]
    rate: list[int]
    rates: tuple[Decimal, ...]
    base: list[int]
    base_places: int
    amount: list[int]
    amount_places: int

    def rows(self) -> Iterator[BonusRow]:
        """The same lines as rows of Decimals."""
        for earner, source, level, rate, base, amount in zip(
            self.earner_id,
            self.source_member_id,
            self.level,
            self.rate,
            self.base,
            self.amount,
            strict=True,
        ):
            yield BonusRow(
                self.bonus,
                earner,
                source,
                level,
                self.rates[rate],
                from_units(base, self.base_places),
                from_units(amount, self.amount_places),
            )


class BonusLines(NamedTuple):
    """A close's bonus lines: some kinds as whole units, the others as rows of Decimals."""

    units: tuple[UnitLines, ...]
    rows: list[BonusRow]

    def every_row(self) -> list[BonusRow]:
        """Every line as a row of Decimals, in earner order (by code point; the close writes
        them in the database's order of ids, which is the order of the lines' indexes)."""
        found = [row for lines in self.units for row in lines.rows()]
        found.extend(self.rows)
        found.sort(key=lambda row: row.earner_id)
        return found


_STAGED_LINE = """
    n int8 GENERATED ALWAYS AS IDENTITY, bonus text, earner_id text, source_member_id text,
    level int4, rate {rate}, base {figure}, amount {figure}
"""
_STAGED_COLUMNS = ("bonus", "earner_id", "source_member_id", "level", "rate", "base", "amount")
_LINES_FROM_UNITS = text(
    """
    INSERT INTO close_bonus_lines (bonus, earner_id, source_member_id, level, rate, base, amount)
    SELECT bonus, earner_id, source_member_id, level, (CAST(:rates AS numeric[]))[rate + 1],
           base * CAST(:base_unit AS numeric), amount * CAST(:amount_unit AS numeric)
    FROM close_bonus_units ORDER BY n
    """
)
# The staged lines, in earner order (the lines' indexes by earner then take them page by
# page; within an earner, in the order they were staged); and each earner's sum, added to
# the close's earnings (service.db.periods.gather_earnings), which keep one row per member.
_WRITE_STAGED_LINES = text(
    """
    INSERT INTO commission_lines (program_id, earner_id, source_member_id, kind, bonus, level,
                                  paid_level, rate, base, amount, period, plan_version)
    SELECT :program_id, earner_id, source_member_id, 'bonus', bonus, level, level, rate, base,
           amount, :period, :plan_version
    FROM close_bonus_lines ORDER BY earner_id, n
    """
)
_BONUS_EARNINGS = text(
    """
    WITH sums AS (
        SELECT earner_id AS member_id, sum(amount) AS bonus FROM close_bonus_lines
        GROUP BY earner_id
    ),
    earning AS (
        UPDATE close_earnings e SET bonus = e.bonus + s.bonus FROM sums s
        WHERE e.member_id = s.member_id
        RETURNING e.member_id
    )
    INSERT INTO close_earnings (member_id, personal, override, reversal, bonus)
    SELECT s.member_id, 0, 0, 0, s.bonus FROM sums s
    WHERE NOT EXISTS (SELECT 1 FROM earning e WHERE e.member_id = s.member_id)
    """
)


async def write_bonus_lines(
    session: AsyncSession,
    program_id: str,
    period: str,
    plan_version: int,
    lines: BonusLines,
) -> None:
    """Write the period's bonus lines (kind `bonus`, no sale; `paid_level` is `level`) and
    add each earner's sum to the close's earnings. They are staged first in a table of the
    transaction's own (the lines in units made exact decimals there), then inserted in
    earner order."""
    staged = _STAGED_LINE.format(rate="numeric", figure="numeric")
    await temporary_table(session, "close_bonus_lines", staged)
    if lines.units:
        units = _STAGED_LINE.format(rate="int4", figure="int8")
        await temporary_table(session, "close_bonus_units", units)
        rates: list[Decimal] = []
        for kind in lines.units:
            offset = len(rates)
            rates.extend(kind.rates)
            await _copy(
                session,
                "close_bonus_units",
                _STAGED_COLUMNS,
                zip(
                    [kind.bonus] * len(kind.earner_id),
                    kind.earner_id,
                    kind.source_member_id,
                    kind.level,
                    [offset + rate for rate in kind.rate],
                    kind.base,
                    kind.amount,
                    strict=True,
                ),
            )
        places = {(kind.base_places, kind.amount_places) for kind in lines.units}
        if len(places) != 1:
            raise ValueError("bonus lines in units of different places")
        ((base_places, amount_places),) = places
        await session.execute(
            _LINES_FROM_UNITS,
            {
                "rates": rates,
                "base_unit": _unit(base_places),
                "amount_unit": _unit(amount_places),
            },
        )
    await _copy(session, "close_bonus_lines", _STAGED_COLUMNS, lines.rows)
    await session.execute(
        _WRITE_STAGED_LINES,
        {"program_id": program_id, "period": period, "plan_version": plan_version},
    )
    await session.execute(_BONUS_EARNINGS)


_ADVANCED = text("SELECT member_id, rank FROM advancements WHERE program_id = :program_id")


async def advancements(session: AsyncSession, program_id: str) -> dict[str, set[str]]:
    """The ranks whose advancement bonus each member was paid, by member."""
    found: dict[str, set[str]] = {}
    for member, rank in await session.execute(_ADVANCED, {"program_id": program_id}):
        found.setdefault(member, set()).add(rank)
    return found


async def write_advancements(
    session: AsyncSession, program_id: str, period: str, paid: Iterable[tuple[str, str]]
) -> None:
    """Record the advancement bonuses paid in the period: (member id, rank name) pairs."""
    await _copy(
        session,
        "advancements",
        ("program_id", "member_id", "rank", "period"),
        ((program_id, member, rank, period) for member, rank in paid),
    )


_SET_RANKS = text(
    """
    UPDATE members m
    SET rank = u.rank, achieved_rank = u.achieved_rank
    FROM unnest(CAST(:members AS text[]), CAST(:ranks AS text[]), CAST(:achieved AS text[]))
         AS u(member_id, rank, achieved_rank)
    WHERE m.program_id = :program_id AND m.member_id = u.member_id
      AND (m.rank IS DISTINCT FROM u.rank OR m.achieved_rank IS DISTINCT FROM u.achieved_rank)
    """
)


async def set_member_ranks(
    session: AsyncSession, program_id: str, ranks: dict[str, tuple[str | None, str | None]]
) -> None:
    """Set each given member's rank in force and achieved rank (member id -> (rank,
    achieved)), by one probe of the members' key per member given: the close gives only the
    members whose ranks change, so the statement neither reads every member nor depends on
    estimates of rows the close has just written."""
    members = list(ranks)
    await session.execute(
        _SET_RANKS,
        {
            "program_id": program_id,
            "members": members,
            "ranks": [ranks[m][0] for m in members],
            "achieved": [ranks[m][1] for m in members],
        },
    )


_SUBTREE = text(
    """
    SELECT m.member_id, m.sponsor_id, m.status = 'active' AS active,
           COALESCE(v.volume, 0) AS personal_volume
    FROM members r
    JOIN members m ON m.program_id = r.program_id AND m.lo >= r.lo AND m.lo < r.hi
    LEFT JOIN member_period_volumes v
      ON v.program_id = m.program_id AND v.member_id = m.member_id AND v.period = :period
    WHERE r.program_id = :program_id AND r.member_id = :member_id
    """
)


async def subtree_volumes(
    session: AsyncSession, program_id: str, member_id: str, period: str
) -> list[MemberVolume]:
    """The member and everyone below them as they stand now (one range scan of the tree
    labels), with their personal volume booked in the period so far."""
    result = await session.execute(
        _SUBTREE, {"program_id": program_id, "member_id": member_id, "period": period}
    )
    return [MemberVolume(r[0], r[1], r[2], r[3]) for r in result]


_FROZEN = text(
    """
    SELECT member_id, sponsor_id, active, personal_volume, organization_volume,
           active_recruits, rank, best_rank
    FROM period_ranks
    WHERE program_id = :program_id AND period = :period
      AND (member_id = :member_id OR sponsor_id = :member_id)
    """
)


async def frozen_figures(
    session: AsyncSession, program_id: str, period: str, member_id: str
) -> tuple[RankRow | None, list[RankRow]]:
    """What the close of the period stored for the member (None: no figure at all) and for
    each of their direct recruits at the close that had any."""
    result = await session.execute(
        _FROZEN, {"program_id": program_id, "period": period, "member_id": member_id}
    )
    own, recruits = None, []
    for row in result:
        found = RankRow(*row)
        if found.member_id == member_id:
            own = found
        else:
            recruits.append(found)
    return own, recruits


_HISTORY = text(
    """
    SELECT c.period, r.rank FROM closed_periods c
    LEFT JOIN period_ranks r
      ON r.program_id = c.program_id AND r.period = c.period AND r.member_id = :member_id
    WHERE c.program_id = :program_id
    ORDER BY c.period DESC
    """
)


async def rank_history(
    session: AsyncSession, program_id: str, member_id: str
) -> list[tuple[str, str | None]]:
    """(period, paid-as rank) for every closed period of the program, newest first."""
    result = await session.execute(_HISTORY, {"program_id": program_id, "member_id": member_id})
    return [(period, rank) for period, rank in result]


_MEMBER_RANKS = text(
    "SELECT rank, achieved_rank, status FROM members WHERE program_id = :program_id"
    " AND member_id = :member_id"
)


async def member_ranks(
    session: AsyncSession, program_id: str, member_id: str
) -> tuple[str | None, str | None, str] | None:
    """The member's (rank in force, achieved rank, status); None for an unknown member."""
    row = (
        await session.execute(_MEMBER_RANKS, {"program_id": program_id, "member_id": member_id})
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


# The member's team as fixed-width binary rows that numpy reads without a Python object per
# member, in one statement (one snapshot): each member's labels, depth and status, then
# each volume row of the period in the team's label range, marked by a `hi` of -1, with
# the volume in units of 10**-VOLUME_PLACES (booked volumes hold four places, so the
# product is whole; a volume too large for 62 bits of units comes as 2**62, which the array
# decision refuses, leaving the team to the Decimals). Both halves are range scans of a
# label index; matching volumes to members by label in numpy saves the join of a million
# rows.
_TEAM_COPY = """
    SELECT m.lo, m.hi, m.depth::int8, m.status = 'active', 0::int8
    FROM members r
    JOIN members m ON m.program_id = r.program_id AND m.lo >= r.lo AND m.lo < r.hi
    WHERE r.program_id = $1 AND r.member_id = $2
    UNION ALL
    SELECT v.lo, -1, 0, false,
           CASE WHEN abs(v.volume) < 400000000000000 THEN (v.volume * 10000)::int8
                ELSE 4611686018427387904 END
    FROM members r
    JOIN member_period_volumes v
      ON v.program_id = r.program_id AND v.period = $3 AND v.lo >= r.lo AND v.lo < r.hi
    WHERE r.program_id = $1 AND r.member_id = $2
"""
assert 10**VOLUME_PLACES == 10000

# PostgreSQL's binary COPY: a 19-byte header, then per row a field count and each field
# as its length and big-endian bytes, then a two-byte trailer.
_SIGNATURE, _HEADER, _TRAILER = b"PGCOPY\n\xff\r\n\x00", 19, 2
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("lo_size", ">i4"),
        ("lo", ">i8"),
        ("hi_size", ">i4"),
        ("hi", ">i8"),
        ("depth_size", ">i4"),
        ("depth", ">i8"),
        ("active_size", ">i4"),
        ("active", "u1"),
        ("personal_size", ">i4"),
        ("personal", ">i8"),
    ]
)

_RECRUITS = text(
    "SELECT member_id, lo FROM members"
    " WHERE program_id = :program_id AND sponsor_id = :member_id ORDER BY lo"
)


class _Received:
    """What a COPY sends, gathered in one numpy buffer that grows by doubling: a large
    allocation goes back to the system when freed, where the COPY's many small chunks kept
    whole would stay in the process's heap (a root's team is some 70 MB of rows)."""

    def __init__(self) -> None:
        self.buffer: NDArray[np.uint8] = np.empty(1 << 16, dtype=np.uint8)
        self.size = 0

    async def keep(self, chunk: bytes) -> None:
        end = self.size + len(chunk)
        if end > len(self.buffer):
            grown = np.empty(max(end, 2 * len(self.buffer)), dtype=np.uint8)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = grown
        self.buffer[self.size : end] = np.frombuffer(chunk, dtype=np.uint8)
        self.size = end


async def team_of(
    session: AsyncSession, program_id: str, member_id: str, period: str
) -> tuple[Team, dict[int, str]]:
    """The member (first) and everyone below them as they stand now, with their personal
    volume booked in the period so far; and the member's direct recruits by tree label.
    Read by two statements, the recruits first: the caller checks that both saw the same
    recruits (an enrolment or a relabelling between them is rare) and reads again if not."""
    found = await session.execute(_RECRUITS, {"program_id": program_id, "member_id": member_id})
    recruits = {int(lo): recruit for recruit, lo in found}
    team, _ = await _copied_team(session, _TEAM_COPY, _ROW, program_id, member_id, period)
    return team, recruits


# The whole program in the layout of _TEAM_COPY, each member row carrying the member's id
# (ids are at most 64 ASCII characters: as char(64) every row keeps one width).
_PROGRAM_COPY = """
    SELECT m.lo, m.hi, m.depth::int8, m.status = 'active', 0::int8, m.member_id::char(64)
    FROM members m WHERE m.program_id = $1
    UNION ALL
    SELECT v.lo, -1, 0, false,
           CASE WHEN abs(v.volume) < 400000000000000 THEN (v.volume * 10000)::int8
                ELSE 4611686018427387904 END,
           ''::char(64)
    FROM member_period_volumes v WHERE v.program_id = $1 AND v.period = $2
"""
_ID_WIDTH = 64
_PROGRAM_ROW = np.dtype([*_ROW.descr, ("member_id_size", ">i4"), ("member_id", f"S{_ID_WIDTH}")])


async def program_team(
    session: AsyncSession, program_id: str, period: str
) -> tuple[Team, list[str]]:
    """Every member of the program as they stand now, in depth-first order (by tree label),
    with their personal volume booked in the period (net of its refunds); and their ids in
    the same order. One statement, so one snapshot of the tree."""
    team, ids = await _copied_team(session, _PROGRAM_COPY, _PROGRAM_ROW, program_id, period)
    assert ids is not None
    return team, ids


async def _binary_copy(
    session: AsyncSession, query: str, layout: np.dtype[Any], *arguments: str
) -> NDArray[Any]:
    """The rows of a binary COPY of `query`, read in place as `layout`: a field count, then
    each field `X` after its length `X_size`. Rows of any other shape (a field of another
    width, a NULL) are refused, never misread."""
    driver = await driver_of(session)
    received = _Received()
    await driver.copy_from_query(query, *arguments, output=received.keep, format="binary")
    body = received.buffer[: received.size]
    rows = np.frombuffer(
        body,
        dtype=layout,
        offset=_HEADER,
        count=(len(body) - _HEADER - _TRAILER) // layout.itemsize,
    )
    fields = [name for name in layout.names or () if f"{name}_size" in (layout.names or ())]
    if bytes(body[: len(_SIGNATURE)]) != _SIGNATURE or not (
        np.all(rows["fields"] == len(fields))
        and all(np.all(rows[f"{name}_size"] == layout[name].itemsize) for name in fields)
    ):
        raise RuntimeError("COPY answered rows of another layout")
    return rows


async def _copied_team(
    session: AsyncSession, query: str, layout: np.dtype[Any], *arguments: str
) -> tuple[Team, list[str] | None]:
    """A team read by a binary COPY of `query` whose rows have the fixed `layout`: member
    rows, then volume rows (marked by a `hi` of -1) matched to members by label."""
    rows = await _binary_copy(session, query, layout, *arguments)
    with_ids = "member_id" in (layout.names or ())
    hi = rows["hi"].astype(np.int64)
    is_member = hi >= 0
    lo_all = rows["lo"].astype(np.int64)
    lo = lo_all[is_member]
    order = None if np.all(lo[1:] > lo[:-1]) else np.argsort(lo)

    def members(column: str) -> NDArray[Any]:
        values = rows[column][is_member]
        return values if order is None else values[order]

    lo = lo if order is None else lo[order]
    volume_lo = lo_all[~is_member]
    at = np.searchsorted(lo, volume_lo)
    if len(at) and (at.max() >= len(lo) or np.any(lo[at] != volume_lo)):
        raise RuntimeError("a volume of the period has no member at its label")
    personal = np.zeros(len(lo), dtype=np.int64)
    personal[at] = rows["personal"][~is_member]
    team = Team(
        lo=lo,
        hi=hi[is_member] if order is None else hi[is_member][order],
        depth=members("depth").astype(np.int64),
        active=members("active").astype(np.bool_),
        personal=personal,
    )
    ids = None
    if with_ids:
        # Ids hold no blanks: the padded fields, end to end, split at the padding.
        ids = members("member_id").tobytes().decode("ascii").split()
        if len(ids) != len(lo):
            raise RuntimeError("COPY answered a member id that is blank or not ASCII")
    return team, ids


# What each member earned in the close's period on sales (personal and override lines net
# of the reversals booked in it, from the close's earnings), by tree label, in units of
# 10**-VOLUME_PLACES (lines hold four places); a sum too large for 62 bits of units comes
# as 2**62.
_EARNED_COPY = """
    SELECT m.lo,
           CASE WHEN abs(e.total) < 400000000000000 THEN (e.total * 10000)::int8
                ELSE 4611686018427387904 END
    FROM (SELECT member_id, personal + override + reversal AS total FROM close_earnings) e
    JOIN members m ON m.program_id = $1 AND m.member_id = e.member_id
"""
_EARNED_ROW = np.dtype(
    [("fields", ">i2"), ("lo_size", ">i4"), ("lo", ">i8"), ("units_size", ">i4"), ("units", ">i8")]
)


async def earned_by_label(
    session: AsyncSession, program_id: str
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """`earned_on_sales` as arrays: tree labels and units of 10**-VOLUME_PLACES."""
    rows = await _binary_copy(session, _EARNED_COPY, _EARNED_ROW, program_id)
    return rows["lo"].astype(np.int64), rows["units"].astype(np.int64)
