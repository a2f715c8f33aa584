"""The bodies of sale answers, and how a remembered answer is built again.

A created sale's answer (the sale and the lines it paid) is made of records that never
change but for the amount refunded since, so the memory of an applied event or
Idempotency-Key keeps a reference to the sale instead of the body, and a replay builds the
body again as it was first answered.
"""

from __future__ import annotations

from typing import Any

from fastapi import status
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.schemas import instant
from service.db.sales import LineRow, NewLine, SaleRow
from service.domain.money import format_money, format_rate
from service.services import sales
from service.services.intake import Outcome, Rebuild
from service.services.sales import RecordedSale


def line_json(line: LineRow | NewLine, currency: str) -> dict[str, Any]:
    """A line as the API prints it (the fast path of `LineOut`)."""
    return {
        "earner_id": line.earner_id,
        "kind": line.kind,
        "level": line.level,
        "paid_level": line.paid_level,
        "rate": format_rate(line.rate),
        "base": format_money(line.base, currency),
        "amount": format_money(line.amount, currency),
    }


def sale_json(sale: SaleRow) -> dict[str, Any]:
    """A sale as the API prints it (the fast path of `SaleOut`)."""
    currency = sale.currency
    return {
        "id": sale.sale_id,
        "member_id": sale.member_id,
        "amount": format_money(sale.amount, currency),
        "currency": currency,
        "volume": format_money(sale.volume, currency),
        "category": sale.category,
        "subscription_id": sale.subscription_id,
        "customer": sale.customer,
        "occurred_at": instant(sale.occurred_at),
        "period": sale.period,
        "refunded": format_money(sale.refunded, currency),
        "plan_version": sale.plan_version,
    }


def sale_body(recorded: RecordedSale) -> dict[str, Any]:
    currency = recorded.sale.currency
    return {
        "sale": sale_json(recorded.sale),
        "lines": [line_json(line, currency) for line in recorded.lines],
    }


def sale_outcome(recorded: RecordedSale, *, with_body: bool = True) -> Outcome:
    """The answer to a posted sale: 201 and the sale with its lines, or 200 and the sale as
    stored when it was posted before. A created sale is remembered by reference; without
    `with_body` (a caller that only counts outcomes) its body is not built at all."""
    if not recorded.created:
        return Outcome(status.HTTP_200_OK, sale_body(recorded))
    return Outcome(
        status.HTTP_201_CREATED,
        sale_body(recorded) if with_body else {},
        stored={"sale_id": recorded.sale.sale_id},
    )


def rebuilder(session: AsyncSession, program_id: str) -> Rebuild:
    """Builds a remembered sale answer again, as it was first answered."""

    async def rebuild(stored: dict[str, Any]) -> dict[str, Any]:
        return sale_body(await sales.first_answer(session, program_id, stored["sale_id"]))

    return rebuild
