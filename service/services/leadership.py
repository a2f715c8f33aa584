"""A period's leadership, decided at its close: every member's paid-as rank, the rows that
store the figures deciding them, the bonus lines and the achieved ranks after the period.

The whole program is decided over arrays (`service.compute`) in one pass of numpy work per
rank and per generation, without a Python step per member; the rules, and the result, are
those of `service.domain.leadership`, to which a program whose volumes or amounts do not
fit the arrays' exact integers falls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from service.compute.leadership import Lines, differential_lines, matching_lines
from service.compute.ranks import VOLUME_PLACES, Team, TeamRanks, decide_team, from_units
from service.db import ranks as rank_sql
from service.db.programs import ProgramRow
from service.db.ranks import BonusLines, BonusRow, RankRow, RankUnits, UnitLines
from service.domain.bonuses import (
    BonusKind,
    BonusLine,
    advancement_bonuses,
    pool_bonuses,
)
from service.domain.currencies import MINOR_UNITS
from service.domain.leadership import Leadership, bonus_totals, decide_leadership
from service.domain.plan import Plan
from service.domain.ranks import Figures, Rank, rank_index, rank_name

__all__ = ["Decision", "decide_period", "from_arrays", "from_decimals"]

_UNITS_LIMIT = 2**62


@dataclass(frozen=True, slots=True)
class Decision:
    """What a close decides for ranks and bonuses: `ranked` each paid-as rank (an index),
    `achieved` each member's achieved rank after the period, `bonus_lines` every bonus line,
    `bonuses` their totals by kind of bonus (in the order of `BonusKind`; a kind without a
    line left out), `advanced` the (member, rank) pairs whose advancement bonus the period
    pays; `rank_rows()` the figures stored for every member with any volume or rank below
    them, and `rank_units()`, where the arrays decided, the same rows in whole units (which
    is how they are written)."""

    ranked: dict[str, int]
    achieved: dict[str, int]
    bonus_lines: BonusLines
    bonuses: dict[str, Decimal]
    advanced: list[tuple[str, str]]
    rank_rows: Callable[[], Iterator[RankRow]]
    rank_units: Callable[[], RankUnits] | None = None

    @property
    def bonus_rows(self) -> list[BonusRow]:
        """Every bonus line as a row of Decimals, in earner order."""
        return self.bonus_lines.every_row()

    def rank_counts(self, plan: Plan) -> dict[str, int]:
        """How many members are paid as each rank (ranks nobody holds left out), lowest
        first."""
        counts = [0] * len(plan.ranks)
        for rank in self.ranked.values():
            counts[rank] += 1
        return {rank.name: n for rank, n in zip(plan.ranks, counts, strict=True) if n}


def _row(line: BonusLine) -> BonusRow:
    return BonusRow(
        line.bonus.value,
        line.earner_id,
        line.source_id,
        line.level,
        line.rate,
        line.base,
        line.amount,
    )


def _advanced(lines: Iterable[BonusLine]) -> list[tuple[str, str]]:
    return [(line.earner_id, line.rank) for line in lines if line.bonus is BonusKind.ADVANCEMENT]


async def decide_period(
    session: AsyncSession,
    program: ProgramRow,
    period: str,
    plan: Plan,
    held: dict[str, tuple[str | None, str | None]],
) -> Decision:
    """The period's leadership under `plan`, from the tree as it stands and the period's
    booked volume and earnings; `held` is each member's (rank in force, achieved rank)."""
    program_id = program.program_id
    achieved_before = {
        member_id: index
        for member_id, (_, name) in held.items()
        if (index := rank_index(plan.ranks, name)) is not None
    }
    advanced_before = await rank_sql.advancements(session, program_id)
    net_volume = await rank_sql.net_volume(session, program_id, period)
    team, ids = await rank_sql.program_team(session, program_id, period)
    labels, units = await rank_sql.earned_by_label(session, program_id)
    found = from_arrays(
        plan,
        team,
        ids,
        earned_labels=labels,
        earned_units=units,
        achieved_before=achieved_before,
        advanced_before=advanced_before,
        net_volume=net_volume,
        currency=program.currency,
    )
    if found is not None:
        return found
    leadership = decide_leadership(
        plan,
        await rank_sql.tree_volumes(session, program_id, period),
        earned_on_sales=await rank_sql.earned_on_sales(session),
        achieved_before=achieved_before,
        net_volume=net_volume,
        currency=program.currency,
        advanced_before=advanced_before,
    )
    return from_decimals(plan, leadership)


def from_decimals(plan: Plan, leadership: Leadership) -> Decision:
    """The Decision of `service.domain.leadership.decide_leadership`'s result."""
    ranks = plan.ranks
    sponsors = leadership.sponsors

    def rows() -> Iterator[RankRow]:
        for s in leadership.standings.values():
            if s.personal_volume or s.organization_volume or s.best_rank is not None:
                yield RankRow(
                    member_id=s.member_id,
                    sponsor_id=sponsors.get(s.member_id),
                    active=s.active,
                    personal_volume=s.personal_volume,
                    organization_volume=s.organization_volume,
                    active_recruits=s.active_recruits,
                    rank=rank_name(ranks, s.rank),
                    best_rank=rank_name(ranks, s.best_rank),
                )

    lines = leadership.bonus_lines
    return Decision(
        ranked={m: s.rank for m, s in leadership.standings.items() if s.rank is not None},
        achieved=leadership.achieved,
        bonus_lines=BonusLines(units=(), rows=[_row(line) for line in lines]),
        bonuses=bonus_totals(lines),
        advanced=_advanced(lines),
        rank_rows=rows,
    )


def from_arrays(
    plan: Plan,
    team: Team,
    ids: list[str],
    *,
    earned_labels: np.ndarray,
    earned_units: np.ndarray,
    achieved_before: dict[str, int],
    advanced_before: dict[str, set[str]],
    net_volume: Decimal,
    currency: str,
) -> Decision | None:
    """The Decision over arrays: `team` is the whole program in depth-first order with `ids`
    by position, `earned_*` what members earned on sales by tree label (units of
    10**-VOLUME_PLACES). None when the figures do not fit the arrays' exact integers."""
    ranks = plan.ranks
    decided = decide_team(ranks, team)
    if decided is None:
        return None
    count = len(ids)
    at = np.searchsorted(team.lo, earned_labels)
    if len(at) and (at.max() >= count or np.any(team.lo[at] != earned_labels)):
        raise RuntimeError("an earner of the period has no member at its label")
    if len(earned_units) and int(np.abs(earned_units).max()) >= _UNITS_LIMIT:
        return None
    earned = np.zeros(count, dtype=np.int64)
    earned[at] = earned_units
    digits = MINOR_UNITS[currency]
    differential = differential_lines(
        ranks,
        sponsor=decided.sponsor,
        depth=team.depth,
        rank=decided.rank,
        personal=team.personal,
        digits=digits,
    )
    if differential is None:
        return None
    paid = differential.earned(count)
    if len(paid) and int(np.abs(paid).max()) >= _UNITS_LIMIT:
        return None
    matching = matching_lines(
        ranks, sponsor=decided.sponsor, rank=decided.rank, earned=earned + paid, digits=digits
    )
    if matching is None:
        return None
    ranked_at = np.nonzero(decided.rank >= 0)[0].tolist()
    rank_of = decided.rank.tolist()
    figures = [_figures(team, decided, ids, i) for i in ranked_at]
    ranked = {f.member_id: rank_of[i] for f, i in zip(figures, ranked_at, strict=True)}
    achieved = dict(achieved_before)
    for member_id, rank in ranked.items():
        achieved[member_id] = max(rank, achieved.get(member_id, rank))
    pool = pool_bonuses(ranks, figures, plan.leadership_pool_rate, net_volume, currency)
    advancement = advancement_bonuses(ranks, figures, achieved_before, advanced_before)
    lines = BonusLines(
        units=(
            _unit_lines(BonusKind.DIFFERENTIAL, differential, ids, digits),
            _unit_lines(BonusKind.MATCHING, matching, ids, digits),
        ),
        rows=[_row(line) for line in (*pool, *advancement)],
    )
    totals = bonus_totals([*pool, *advancement])
    for kind, found in ((BonusKind.DIFFERENTIAL, differential), (BonusKind.MATCHING, matching)):
        if len(found):
            totals[kind.value] = from_units(
                int(found.amount.sum()) // 10 ** (VOLUME_PLACES - digits), digits
            )
    return Decision(
        ranked=ranked,
        achieved=achieved,
        bonus_lines=lines,
        bonuses={kind.value: totals[kind.value] for kind in BonusKind if kind.value in totals},
        advanced=_advanced(advancement),
        rank_rows=lambda: _rank_rows(ranks, team, decided, ids),
        rank_units=lambda: _rank_units(ranks, team, decided, ids),
    )


def _figures(team: Team, decided: TeamRanks, ids: list[str], i: int) -> Figures:
    return Figures(
        member_id=ids[i],
        active=bool(team.active[i]),
        personal_volume=from_units(int(team.personal[i]), VOLUME_PLACES),
        organization_volume=decided.volume(decided.organization[i]),
        active_recruits=int(decided.active_recruits[i]),
        rank=decided.rank_at(i),
        best_rank=decided.best_at(i),
    )


def _unit_lines(kind: BonusKind, lines: Lines, ids: list[str], digits: int) -> UnitLines:
    """The array lines as whole units: amounts at the currency's places, bases at the four
    of booked volumes and earnings."""
    return UnitLines(
        bonus=kind.value,
        earner_id=[ids[i] for i in lines.earner.tolist()],
        source_member_id=[ids[i] for i in lines.source.tolist()],
        level=lines.level.tolist(),
        rate=lines.rate.tolist(),
        rates=lines.rates,
        base=lines.base.tolist(),
        base_places=VOLUME_PLACES,
        amount=(lines.amount // 10 ** (VOLUME_PLACES - digits)).tolist(),
        amount_places=digits,
    )


def _rank_rows(
    ranks: tuple[Rank, ...], team: Team, decided: TeamRanks, ids: list[str]
) -> Iterator[RankRow]:
    """The rows of `_rank_units` with their volumes as Decimals."""
    units = _rank_units(ranks, team, decided, ids)
    for member, sponsor, active, personal, organization, recruits, rank, best in units.records:
        yield RankRow(
            member,
            sponsor,
            active,
            from_units(personal, units.personal_places),
            from_units(organization, units.organization_places),
            recruits,
            rank,
            best,
        )


def _stored(team: Team, decided: TeamRanks) -> NDArray[np.intp]:
    """The positions of every member with any volume, or a rank held by them or below them."""
    return np.nonzero((team.personal != 0) | (decided.organization != 0) | (decided.best >= 0))[0]


def _rank_units(
    ranks: tuple[Rank, ...], team: Team, decided: TeamRanks, ids: list[str]
) -> RankUnits:
    """A row for every member with any volume, or a rank held by them or below them, with
    the volumes in whole units: personal in units of 10**-VOLUME_PLACES, organization of
    10**-scale (the scale the ranks were decided at)."""
    names: list[str | None] = [rank.name for rank in ranks]
    names.append(None)  # index -1: no rank
    stored = _stored(team, decided)
    records = zip(
        [ids[i] for i in stored.tolist()],
        [ids[s] if s >= 0 else None for s in decided.sponsor[stored].tolist()],
        team.active[stored].tolist(),
        team.personal[stored].tolist(),
        decided.organization[stored].tolist(),
        decided.active_recruits[stored].tolist(),
        [names[r] for r in decided.rank[stored].tolist()],
        [names[b] for b in decided.best[stored].tolist()],
        strict=True,
    )
    return RankUnits(
        records=records, personal_places=VOLUME_PLACES, organization_places=decided.scale
    )
