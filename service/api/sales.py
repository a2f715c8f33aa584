"""Sales, their commission lines, and refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.answers import line_json, sale_json, sale_outcome
from service.api.deps import Reader, SessionDep, Writer
from service.api.idempotency import IdempotencyKey, answer
from service.api.problems import problem_responses
from service.api.schemas import Instant, MemberId, Request
from service.db.sales import LineRow, RefundRow, SaleRow
from service.domain.money import format_money
from service.services import sales
from service.services.intake import Outcome
from service.services.programs import Principal
from service.services.sales import RefundInput, SaleInput

router = APIRouter(prefix="/v1/sales", tags=["sales"], responses=problem_responses(401, 403))

ObjectId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$"),
    Field(description="chosen by the client: 1-64 characters of A-Za-z0-9._:-"),
]
MoneyText = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(description='money in major units as a string, e.g. "19.99"', examples=["100.00"]),
]
Category = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$"),
    Field(description="the plan's rate category", examples=["product", "enrollment_fee"]),
]


class SaleRequest(Request):
    id: ObjectId = Field(description="the order id")
    member_id: MemberId = Field(description="who is credited with the sale")
    amount: MoneyText
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    volume: MoneyText | None = Field(
        default=None, description="commissionable volume; default: amount"
    )
    category: Category = "product"
    subscription_id: ObjectId | None = Field(
        default=None, description="set for a recurring sale: counted as residual volume"
    )
    customer: Literal["retail", "member"] = "retail"
    occurred_at: Instant


class RefundRequest(Request):
    id: ObjectId
    amount: MoneyText = Field(description="partial allowed; never more than what is left")
    occurred_at: Instant


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
            "zero_amount",
        ]
        | None
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
        return cls(
            id=refund.refund_id,
            sale_id=refund.sale_id,
            amount=format_money(refund.amount, currency),
            volume=format_money(refund.volume, currency),
            occurred_at=refund.occurred_at,
            period=refund.period,
        )


class RefundWithLines(BaseModel):
    refund: RefundOut
    lines: list[LineOut]


class SaleRefund(RefundOut):
    lines: list[LineOut]


class SaleDetail(SaleWithLines):
    levels: list[LevelOut]
    refunds: list[SaleRefund]


def sale_input(body: SaleRequest) -> SaleInput:
    return SaleInput(
        sale_id=body.id,
        member_id=body.member_id,
        amount=body.amount,
        currency=body.currency,
        volume=body.volume,
        category=body.category,
        subscription_id=body.subscription_id,
        customer=body.customer,
        occurred_at=body.occurred_at,
    )


async def apply_sale(session: AsyncSession, caller: Principal, body: SaleRequest) -> Outcome:
    recorded = await sales.record_sale(session, caller.program, sale_input(body))
    return sale_outcome(recorded)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SaleWithLines,
    responses={
        200: {"description": "The same sale was posted before", "model": SaleWithLines},
        **problem_responses(409, 422, 503),
    },
)
async def post_sale(
    body: SaleRequest, session: SessionDep, caller: Writer, idempotency_key: IdempotencyKey = None
) -> Response:
    """Record a sale; every member it pays is paid in the same transaction."""
    return await answer(
        session,
        caller,
        idempotency_key,
        request="POST /v1/sales",
        body=body,
        apply=lambda: apply_sale(session, caller, body),
    )


@router.get("/{sale_id}", responses=problem_responses(404))
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
        levels=[LevelOut(**level) for level in found.levels],
        refunds=[
            SaleRefund(
                **RefundOut.of(r.refund, currency).model_dump(),
                lines=[LineOut.of(x, currency) for x in r.lines],
            )
            for r in found.refunds
        ],
    )


async def apply_refund(
    session: AsyncSession, caller: Principal, sale_id: str, body: RefundRequest
) -> Outcome:
    recorded = await sales.refund_sale(
        session,
        caller.program,
        sale_id,
        RefundInput(refund_id=body.id, amount=body.amount, occurred_at=body.occurred_at),
    )
    currency = caller.program.currency
    out = RefundWithLines(
        refund=RefundOut.of(recorded.refund, currency),
        lines=[LineOut.of(x, currency) for x in recorded.lines],
    )
    return Outcome(
        status.HTTP_201_CREATED if recorded.created else status.HTTP_200_OK,
        out.model_dump(mode="json"),
    )


@router.post(
    "/{sale_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundWithLines,
    responses={
        200: {"description": "The same refund was posted before", "model": RefundWithLines},
        **problem_responses(404, 409, 422, 503),
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
    return await answer(
        session,
        caller,
        idempotency_key,
        request=f"POST /v1/sales/{sale_id}/refunds",
        body=body,
        apply=lambda: apply_refund(session, caller, sale_id, body),
    )
