"""Ranks: a member's progress towards each rank in a period, and their rank history."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from service.api.deps import Reader, SessionDep
from service.api.problems import problem_responses
from service.api.reports import PERIOD_PATTERN
from service.domain.money import floor_money, format_money
from service.domain.periods import period_of
from service.domain.ranks import Check, Requirement
from service.errors import InvalidPeriod, MemberNotFound
from service.intake.requests import MemberId
from service.services import periods, ranks

router = APIRouter(prefix="/v1/members", tags=["ranks"])

MemberPath = Annotated[MemberId, Path(description="the member's id")]

_MONEY_REQUIREMENTS = {Requirement.PERSONAL_VOLUME, Requirement.ORGANIZATION_VOLUME}


class RequirementOut(BaseModel):
    requirement: Literal[
        "min_personal_volume", "min_organization_volume", "min_legs", "min_active_recruits",
        "active",
    ]  # fmt: skip
    required: str | int = Field(
        description="volumes as money text; legs and recruits as counts; active: 1"
    )
    actual: str | int = Field(
        description="the member's figure (organization volume as the rank counts it, with "
        "max_leg_share); active: 1 or 0"
    )
    met: bool

    @classmethod
    def of(cls, check: Check, currency: str) -> RequirementOut:
        def shown(value: Decimal | int) -> str | int:
            if check.requirement in _MONEY_REQUIREMENTS:
                # A volume counted with max_leg_share may fall between minor units: it is
                # shown rounded down (the check itself compared the exact figure).
                return format_money(floor_money(Decimal(value), currency), currency)
            return int(value)

        return cls(
            requirement=check.requirement.value,
            required=shown(check.required),
            actual=shown(check.actual),
            met=check.met,
        )


class RankProgressOut(BaseModel):
    name: str
    qualified: bool = Field(description="every requirement met (and the member active)")
    requirements: list[RequirementOut]


class NextRankOut(BaseModel):
    name: str
    missing: list[RequirementOut] = Field(description="its requirements not met yet")


class LegOut(BaseModel):
    member_id: str = Field(description="the direct recruit the leg starts with")
    volume: str = Field(description="the recruit's organization volume in the period")
    rank: str | None = Field(description="the recruit's paid-as rank")
    best_rank: str | None = Field(description="the highest rank held by anyone in the leg")


class RankStandingOut(BaseModel):
    member_id: str
    period: str
    status: Literal["open", "closed"] = Field(
        description="closed: the figures the close decided; open: what it would decide now"
    )
    currency: str
    rank: str | None = Field(description="the paid-as rank of the period")
    rank_in_force: str | None = Field(description="the paid-as rank of the latest close")
    achieved_rank: str | None = Field(description="the highest rank ever held")
    personal_volume: str
    organization_volume: str
    active_recruits: int
    legs: list[LegOut] = Field(description="legs with any volume or rank, strongest first")
    ranks: list[RankProgressOut]
    next_rank: NextRankOut | None = Field(description="the rank above the paid-as rank")


class RankHistoryItem(BaseModel):
    period: str
    rank: str | None


class RankHistoryOut(BaseModel):
    member_id: str
    items: list[RankHistoryItem] = Field(description="every closed period, newest first")


PeriodQuery = Annotated[
    str | None,
    Query(
        description="a calendar month YYYY-MM in the program's timezone (default: this month)",
        examples=["2026-11"],
        json_schema_extra={"pattern": PERIOD_PATTERN},
    ),
]


@router.get("/{member_id}/rank", responses=problem_responses(MemberNotFound, InvalidPeriod))
async def get_rank_progress(
    member_id: MemberPath, session: SessionDep, caller: Reader, period: PeriodQuery = None
) -> RankStandingOut:
    """Where the member stands against every rank of the period: each requirement with the
    figure required and the member's own, and what is still missing for the next rank."""
    program = caller.program
    chosen = (
        period_of(datetime.now(UTC), program.timezone)
        if period is None
        else periods.valid_period(period)
    )
    found = await ranks.rank_progress(session, program, member_id, chosen)
    currency = program.currency
    progress = found.progress
    return RankStandingOut(
        member_id=found.member_id,
        period=found.period,
        status="closed" if found.status == "closed" else "open",
        currency=currency,
        rank=progress.rank,
        rank_in_force=found.rank_in_force,
        achieved_rank=found.achieved_rank,
        personal_volume=format_money(found.personal_volume, currency),
        organization_volume=format_money(found.organization_volume, currency),
        active_recruits=found.active_recruits,
        legs=[
            LegOut(
                member_id=leg.member_id,
                volume=format_money(leg.volume, currency),
                rank=leg.rank,
                best_rank=leg.best_rank,
            )
            for leg in found.legs
        ],
        ranks=[
            RankProgressOut(
                name=r.name,
                qualified=r.qualified,
                requirements=[RequirementOut.of(c, currency) for c in r.requirements],
            )
            for r in progress.ranks
        ],
        next_rank=None
        if progress.next_rank is None
        else NextRankOut(
            name=progress.next_rank,
            missing=[RequirementOut.of(c, currency) for c in progress.missing],
        ),
    )


@router.get("/{member_id}/ranks", responses=problem_responses(MemberNotFound))
async def get_rank_history(
    member_id: MemberPath, session: SessionDep, caller: Reader
) -> RankHistoryOut:
    """The member's paid-as rank in every closed period, newest first."""
    found = await ranks.history(session, caller.program, member_id)
    return RankHistoryOut(
        member_id=member_id,
        items=[RankHistoryItem(period=p, rank=r) for p, r in found],
    )
