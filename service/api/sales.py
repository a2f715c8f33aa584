"""Sales, their commission lines, and refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field

from service.api.deps import Reader, SessionDep, Writer
from service.api.idempotency import IdempotencyKey, write_response
from service.api.problems import problem_responses
from service.api.routing import StrictJSONRoute
from service.db.sales import LineRow, RefundRow, SaleRow
from service.domain.calculator import LevelDecision
from service.domain.money import format_money, format_rate
from service.errors import IdempotencyConflict, SaleNotFound
from service.intake.answers import line_json, refund_json, sale_json
from service.intake.requests import ObjectId, RefundRequest, SaleRequest
from service.intake.writes import RecordSale, RefundSale
from service.services import sales

router = APIRouter(prefix="/v1/sales", tags=["sales"], route_class=StrictJSONRoute)


class LineOut(BaseModel):
    earner_id: str
    kind: Literal["personal", "override", "reversal", "bonus"]
    level: int = Field(description="genealogical distance from the seller (0 = personal)")
    paid_level: int = Field(description="the plan level paid, after compression")
    rate: str
    base: str
    amount: str

    @classmethod
    def of(cls, line: LineRow, currency: str) -> LineOut:
        return cls.model_validate(line_json(line, currency))


class SaleOut(BaseModel):
    id: str
    member_id: str
    amount: str
    currency: str
    volume: str
    category: str
    subscription_id: str | None
    customer: str
    occurred_at: datetime
    period: str
    refunded: str
    plan_version: int

    @classmethod
    def of(cls, sale: SaleRow) -> SaleOut:
        return cls.model_validate(sale_json(sale))


class SaleWithLines(BaseModel):
    sale: SaleOut
    lines: list[LineOut]


class LevelOut(BaseModel):
    """Who held an upline level of the sale, and whether they were paid or why not."""

    level: int
    member_id: str
    paid: bool
    paid_level: int | None
    rate: str | None
    amount: str | None
    reason: (
        Literal[
            "inactive",
            "below_activity_volume",
            "terminated",
            "not_yet_enrolled",
            "beyond_depth",
            "zero_rate",
            "rank_depth",
            "zero_amount",
        ]
        | None
    )

    @classmethod
    def of(cls, decision: LevelDecision, currency: str) -> LevelOut:
        return cls(
            level=decision.level,
            member_id=decision.member_id,
            paid=decision.paid,
            paid_level=decision.paid_level,
            rate=None if decision.rate is None else format_rate(decision.rate),
            amount=None if decision.amount is None else format_money(decision.amount, currency),
            reason=None if decision.reason is None else decision.reason.value,
        )


class RefundOut(BaseModel):
    id: str
    sale_id: str
    amount: str
    volume: str = Field(description="the share of the sale's volume the refund takes back")
    occurred_at: datetime
    period: str = Field(description="the period its reversal lines are booked in")

    @classmethod
    def of(cls, refund: RefundRow, currency: str) -> RefundOut:
        return cls.model_validate(refund_json(refund, currency))


class RefundWithLines(BaseModel):
    refund: RefundOut
    lines: list[LineOut]


class SaleRefund(RefundOut):
    lines: list[LineOut]


class SaleDetail(SaleWithLines):
    levels: list[LevelOut]
    refunds: list[SaleRefund]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SaleWithLines,
    responses={
        200: {"description": "The same sale was posted before", "model": SaleWithLines},
        **problem_responses(*RecordSale.refusals, IdempotencyConflict),
    },
)
async def post_sale(
    body: SaleRequest, session: SessionDep, caller: Writer, idempotency_key: IdempotencyKey = None
) -> Response:
    """Record a sale; every member it pays is paid in the same transaction."""
    return await write_response(session, caller, RecordSale(body), idempotency_key)


@router.get("/{sale_id}", responses=problem_responses(SaleNotFound))
async def get_sale(
    sale_id: Annotated[ObjectId, Path()], session: SessionDep, caller: Reader
) -> SaleDetail:
    """The sale, its lines, who was paid or skipped at each upline level and why, and its
    refunds with their reversal lines."""
    found = await sales.explain_sale(session, caller.program_id, sale_id)
    currency = found.sale.currency
    return SaleDetail(
        sale=SaleOut.of(found.sale),
        lines=[LineOut.of(x, currency) for x in found.lines],
        levels=[LevelOut.of(x, currency) for x in found.levels],
        refunds=[
            SaleRefund(
                **RefundOut.of(r.refund, currency).model_dump(),
                lines=[LineOut.of(x, currency) for x in r.lines],
            )
            for r in found.refunds
        ],
    )


@router.post(
    "/{sale_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundWithLines,
    responses={
        200: {"description": "The same refund was posted before", "model": RefundWithLines},
        **problem_responses(*RefundSale.refusals, IdempotencyConflict),
    },
)
async def post_refund(
    sale_id: Annotated[ObjectId, Path()],
    body: RefundRequest,
    session: SessionDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Refund all or part of a sale: reversal lines take the refunded share back from
    exactly the members and rates paid on it."""
    return await write_response(session, caller, RefundSale(sale_id, body), idempotency_key)
