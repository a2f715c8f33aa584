"""Ranks as members see them: where they stand against every rank of a period, and their
rank history.

A closed period answers the figures its close stored (frozen); an open one what the close
would decide now, from the volume booked so far: the member's own team decided from its
deepest members up (a member's rank depends only on the team below them), under the plan
version that will govern the period's close.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncSession

from service.compute.ranks import VOLUME_PLACES, Team, TeamRanks, decide_team, from_units
from service.db import periods as period_sql
from service.db import ranks as rank_sql
from service.db.programs import ProgramRow
from service.db.ranks import RankRow
from service.domain.plan import Plan
from service.domain.ranks import (
    Leg,
    Progress,
    Rank,
    Standing,
    decide,
    progress,
    rank_index,
    rank_name,
)
from service.errors import MemberNotFound
from service.services.periods import governing_version

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class LegFigures:
    """A direct recruit's leg: its volume (the recruit's organization volume), the
    recruit's own paid-as rank and the highest rank held by anyone in the leg."""

    member_id: str
    volume: Decimal
    rank: str | None
    best_rank: str | None


@dataclass(frozen=True, slots=True)
class RankStanding:
    member_id: str
    period: str
    status: str
    rank_in_force: str | None
    achieved_rank: str | None
    personal_volume: Decimal
    organization_volume: Decimal
    active_recruits: int
    legs: list[LegFigures]
    progress: Progress


def _legs_shown(legs: list[LegFigures]) -> list[LegFigures]:
    """The legs with any volume or rank, strongest first (then by recruit id)."""
    shown = [leg for leg in legs if leg.volume or leg.best_rank is not None]
    return sorted(shown, key=lambda leg: (-leg.volume, leg.member_id))


async def rank_progress(
    session: AsyncSession, program: ProgramRow, member_id: str, period: str
) -> RankStanding:
    """The member's figures and progress towards each rank in the period. A closed period
    whose plan has no ranks stored no rank figures: its volumes, which a close froze, are
    read as for an open one."""
    program_id = program.program_id
    held = await rank_sql.member_ranks(session, program_id, member_id)
    if held is None:
        raise MemberNotFound(f"member {member_id!r} does not exist")
    version = await governing_version(session, program, period)
    plan_ranks = () if version is None else version.plan.ranks
    closed = await period_sql.get_closed(session, program_id, period) is not None
    if closed and plan_ranks:
        standing, legs = await _frozen(
            session, program_id, period, member_id, plan_ranks, active=held[2] == "active"
        )
    else:
        plan = None if version is None else version.plan
        standing, legs = await _as_of_now(session, program_id, period, member_id, plan)
    return RankStanding(
        member_id=member_id,
        period=period,
        status="closed" if closed else "open",
        rank_in_force=held[0],
        achieved_rank=held[1],
        personal_volume=standing.personal_volume,
        organization_volume=standing.organization_volume,
        active_recruits=standing.active_recruits,
        legs=_legs_shown(legs),
        progress=progress(plan_ranks, standing),
    )


async def _frozen(
    session: AsyncSession,
    program_id: str,
    period: str,
    member_id: str,
    ranks: tuple[Rank, ...],
    *,
    active: bool,
) -> tuple[Standing, list[LegFigures]]:
    """The standing the close stored: the member's row and their recruits' (a member or
    recruit without a row had no volume and no rank below them; the close stores no status
    for them, so the member's status now, `active`, stands in)."""
    own, recruits = await rank_sql.frozen_figures(session, program_id, period, member_id)
    if own is None:
        own = RankRow(member_id, None, active, ZERO, ZERO, 0, None, None)
    recruits.sort(key=lambda row: row.member_id)
    standing = Standing(
        member_id=member_id,
        active=own.active,
        personal_volume=own.personal_volume,
        organization_volume=own.organization_volume,
        legs=tuple(
            Leg(r.member_id, r.organization_volume, rank_index(ranks, r.best_rank))
            for r in recruits
        ),
        active_recruits=own.active_recruits,
        rank=rank_index(ranks, own.rank),
    )
    legs = [LegFigures(r.member_id, r.organization_volume, r.rank, r.best_rank) for r in recruits]
    return standing, legs


async def _as_of_now(
    session: AsyncSession, program_id: str, period: str, member_id: str, plan: Plan | None
) -> tuple[Standing, list[LegFigures]]:
    """What the close would decide now for the member: their team decided from its deepest
    members up, on the volume booked in the period so far. The team is read as arrays and
    decided at once (service/compute/ranks.py); a team the arrays cannot hold exactly, or
    one whose recruits changed between the two reads three times over, is decided with
    Decimals."""
    ranks = () if plan is None else plan.ranks
    for _ in range(3):
        team, recruits = await rank_sql.team_of(session, program_id, member_id, period)
        decided = decide_team(ranks, team) if len(team.lo) else None
        if decided is None:
            break
        legs = np.nonzero(decided.sponsor == 0)[0]
        if {int(team.lo[j]) for j in legs} == recruits.keys():
            return _standing_of(ranks, member_id, team, decided, recruits, legs)
    return await _decided_with_decimals(session, program_id, period, member_id, ranks)


def _standing_of(
    ranks: tuple[Rank, ...],
    member_id: str,
    team: Team,
    decided: TeamRanks,
    recruits: dict[int, str],
    legs: NDArray[np.int64],
) -> tuple[Standing, list[LegFigures]]:
    """The standing of the team's first member, from the whole team decided as arrays."""
    shown = sorted(
        (
            (
                recruits[int(team.lo[j])],
                decided.volume(decided.organization[j]),
                decided.rank_at(j),
                decided.best_at(j),
            )
            for j in legs
        ),
        key=lambda leg: leg[0],
    )
    standing = Standing(
        member_id=member_id,
        active=bool(team.active[0]),
        personal_volume=from_units(int(team.personal[0]), VOLUME_PLACES),
        organization_volume=decided.volume(decided.organization[0]),
        legs=tuple(Leg(leg, volume, best) for leg, volume, _, best in shown),
        active_recruits=int(decided.active_recruits[0]),
        rank=decided.rank_at(0),
    )
    figures = [
        LegFigures(leg, volume, rank_name(ranks, rank), rank_name(ranks, best))
        for leg, volume, rank, best in shown
    ]
    return standing, figures


async def _decided_with_decimals(
    session: AsyncSession, program_id: str, period: str, member_id: str, ranks: tuple[Rank, ...]
) -> tuple[Standing, list[LegFigures]]:
    """As `_as_of_now`, by service.domain.ranks.decide over the team read as rows."""
    team = await rank_sql.subtree_volumes(session, program_id, member_id, period)
    decided = decide(ranks, team)
    position = decided.member_ids.index(member_id)
    standing = decided.standings(only=[position])[member_id]
    rank_of = {
        decided.member_ids[j]: decided.rank[j]
        for j, sponsor in enumerate(decided.sponsor)
        if sponsor == position
    }
    legs = [
        LegFigures(
            leg.member_id,
            leg.volume,
            rank_name(ranks, rank_of[leg.member_id]),
            rank_name(ranks, leg.best_rank),
        )
        for leg in standing.legs
    ]
    return standing, legs


async def history(
    session: AsyncSession, program: ProgramRow, member_id: str
) -> list[tuple[str, str | None]]:
    """The member's paid-as rank in every closed period, newest first."""
    if await rank_sql.member_ranks(session, program.program_id, member_id) is None:
        raise MemberNotFound(f"member {member_id!r} does not exist")
    return await rank_sql.rank_history(session, program.program_id, member_id)
