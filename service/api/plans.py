"""Plan versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field, StringConstraints

from service.api.deps import Admin, Reader, SessionDep
from service.api.pagination import decode_cursor, encode_cursor, whole_number
from service.api.problems import problem_responses
from service.api.routing import StrictJSONRoute
from service.api.schemas import Cursor, ListPage
from service.domain.plan import MAX_CATEGORIES, MAX_PLAN_DEPTH, MAX_RANK_NAME, MAX_RANKS
from service.errors import InvalidCursor, InvalidPlan, PlanVersionNotFound
from service.intake.requests import Instant, Request
from service.services import plans
from service.services.plans import PlanVersion

router = APIRouter(prefix="/v1/plan", tags=["plan"], route_class=StrictJSONRoute)

RateText = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?$", max_length=20),
    Field(
        description="a decimal string in [0, 1] with at most 6 decimal places", examples=["0.05"]
    ),
]
MoneyText = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?$", max_length=40),
    Field(description="money in major units, as a string", examples=["100.00"]),
]


class CategoryRates(Request):
    personal_rate: RateText
    level_rates: list[RateText] = Field(
        max_length=50, description="level_rates[0] is paid to the seller's sponsor (level 1)"
    )


class ActivityRule(Request):
    min_personal_volume: MoneyText
    window_days: Annotated[int, Field(strict=True, ge=1, le=366)]


class PayoutRule(Request):
    minimum: MoneyText | None = Field(
        default=None,
        description="a member's balance is paid once it reaches this much; below, carried",
    )


Count = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
Levels = Annotated[int, Field(strict=True, ge=0, le=MAX_PLAN_DEPTH)]


class LegRequirement(Request):
    """At least `count` legs, each holding a member paid as `rank` or higher in the same
    period, or each of at least `volume`: one of the two."""

    count: Count
    rank: str | None = Field(default=None, description="a lower rank of this plan")
    volume: MoneyText | None = None


class RankRule(Request):
    """A rank: its requirements (each optional; all must hold) and its rewards."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_RANK_NAME)]
    min_personal_volume: MoneyText | None = None
    min_organization_volume: MoneyText | None = None
    max_leg_share: RateText | None = Field(
        default=None,
        description="with min_organization_volume: each leg counts for at most this share of it",
    )
    min_legs: LegRequirement | None = None
    min_active_recruits: Count | None = Field(
        default=None, description="direct recruits active with personal volume above zero"
    )
    unlocked_levels: Levels | None = Field(
        default=None, description="overrides are paid down to this level for this rank"
    )
    differential_rate: RateText | None = Field(
        default=None, description="stair-step rate; never lower than a lower rank's"
    )
    matching_rates: list[RateText] = Field(
        default_factory=list,
        max_length=MAX_PLAN_DEPTH,
        description="matching_rates[g-1]: the share of what generation g below earned",
    )
    pool_shares: Count | None = Field(default=None, description="shares of the leadership pool")
    advancement_bonus: MoneyText | None = Field(
        default=None, description="paid once, the first time a member reaches this rank"
    )


class LeadershipPool(Request):
    rate: RateText = Field(description="the share of the period's net volume the pool pays")


class PlanRules(Request):
    categories: dict[str, CategoryRates] = Field(
        description="rates per sale category (refused with 422 `invalid_plan` otherwise)",
        json_schema_extra={
            "minProperties": 1,
            "maxProperties": MAX_CATEGORIES,
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,39}$"},
        },
    )
    compression: Literal["none", "dynamic"] = "none"
    activity: ActivityRule | None = None
    max_payout_ratio: RateText | None = None
    ranks: list[RankRule] = Field(
        default_factory=list, max_length=MAX_RANKS, description="lowest first, names unique"
    )
    unranked_levels: Levels | None = Field(
        default=None,
        description="with rank-gated depth: how deep a member without a rank in force earns",
    )
    leadership_pool: LeadershipPool | None = None
    payout: PayoutRule | None = None


class PlanVersionRequest(PlanRules):
    effective_from: Instant = Field(
        description="sales that occur at or after this instant are paid by this version"
    )


class PlanVersionOut(BaseModel):
    version: int
    effective_from: datetime
    created_at: datetime
    categories: dict[str, dict[str, Any]]
    compression: str
    activity: dict[str, Any] | None
    max_payout_ratio: str | None
    ranks: list[dict[str, Any]]
    unranked_levels: int | None = None
    leadership_pool: dict[str, Any] | None = None
    payout: dict[str, Any] | None = None

    @classmethod
    def of(cls, version: PlanVersion) -> PlanVersionOut:
        return cls(
            version=version.version,
            effective_from=version.effective_from,
            created_at=version.created_at,
            **version.rules,
        )


@router.put(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The same version was added before", "model": PlanVersionOut},
        **problem_responses(InvalidPlan),
    },
)
async def put_plan(
    body: PlanVersionRequest, session: SessionDep, caller: Admin, response: Response
) -> PlanVersionOut:
    """Add a plan version. A sale is paid by the version in force when it occurred."""
    version, created = await plans.add_version(
        session,
        caller.program_id,
        caller.program.currency,
        effective_from=body.effective_from,
        rules=body.model_dump(exclude={"effective_from"}, exclude_unset=True),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return PlanVersionOut.of(version)


@router.get("", responses=problem_responses(PlanVersionNotFound))
async def get_plan(
    session: SessionDep,
    caller: Reader,
    at: Annotated[Instant | None, Query(description="default: now")] = None,
) -> PlanVersionOut:
    """The version in force now (or at `at`)."""
    version = await plans.in_force_for_reading(
        session, caller.program_id, caller.program.currency, at or datetime.now(UTC)
    )
    return PlanVersionOut.of(version)


@router.get("/versions", responses=problem_responses(InvalidCursor))
async def get_plan_versions(
    session: SessionDep,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> ListPage[PlanVersionOut]:
    """Every version, oldest first."""
    key = caller.program.cursor_key
    after = 0
    if cursor is not None:
        (position,) = decode_cursor(key, cursor, "plan_versions", 1)
        after = whole_number(position, minimum=1, maximum=2**31 - 1)
    page = await plans.versions(
        session, caller.program_id, caller.program.currency, after_version=after, limit=limit
    )
    next_cursor = None
    if page.has_more:
        next_cursor = encode_cursor(key, "plan_versions", page.items[-1].version)
    return ListPage[PlanVersionOut](
        items=[PlanVersionOut.of(v) for v in page.items], next_cursor=next_cursor
    )
