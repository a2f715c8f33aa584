"""The bodies the writes answer, built once as JSON-ready dicts (the read routes print the
same records the same way), and how a remembered answer is built again.

A created sale's answer (the sale and the lines it paid) is made of records that never
change but for the amount refunded since, so the memory of an applied event or
Idempotency-Key keeps a reference to the sale instead of the body, and a replay builds the
body again as it was first answered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.members import MemberRow
from service.db.sales import LineRow, NewLine, RefundRow, SaleRow
from service.domain.money import format_money, format_rate
from service.intake.ledger import Outcome, Rebuild
from service.services import sales
from service.services.members import Enrolment
from service.services.sales import RecordedRefund, RecordedSale

CREATED = 201
OK = 200


def instant(value: datetime) -> str:
    """An instant as the API prints it: ISO 8601 in UTC with a Z (as pydantic does)."""
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def member_json(row: MemberRow) -> dict[str, Any]:
    """A member as the API prints it (the fast path of the `Member` schema)."""
    return {
        "id": row.member_id,
        "sponsor_id": row.sponsor_id,
        "enrolled_at": instant(row.enrolled_at),
        "status": row.status,
        "name": row.name,
        "rank": row.rank,
        "referral_code": row.referral_code,
        "updated_at": instant(row.updated_at),
    }


def line_json(line: LineRow | NewLine, currency: str) -> dict[str, Any]:
    """A line as the API prints it (the fast path of the `LineOut` schema)."""
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
    """A sale as the API prints it (the fast path of the `SaleOut` schema)."""
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


def refund_json(refund: RefundRow, currency: str) -> dict[str, Any]:
    """A refund as the API prints it (the fast path of the `RefundOut` schema)."""
    return {
        "id": refund.refund_id,
        "sale_id": refund.sale_id,
        "amount": format_money(refund.amount, currency),
        "volume": format_money(refund.volume, currency),
        "occurred_at": instant(refund.occurred_at),
        "period": refund.period,
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
        return Outcome(OK, sale_body(recorded))
    return Outcome(
        CREATED,
        sale_body(recorded) if with_body else {},
        stored={"sale_id": recorded.sale.sale_id},
    )


def refund_outcome(recorded: RecordedRefund, currency: str) -> Outcome:
    """201 and the refund with its reversal lines, or 200 when it was posted before."""
    body = {
        "refund": refund_json(recorded.refund, currency),
        "lines": [line_json(line, currency) for line in recorded.lines],
    }
    return Outcome(CREATED if recorded.created else OK, body)


def enrolment_outcome(result: Enrolment) -> Outcome:
    return Outcome(CREATED if result.created else OK, member_json(result.member))


def rebuilder(session: AsyncSession, program_id: str) -> Rebuild:
    """Builds a remembered sale answer again, as it was first answered."""

    async def rebuild(stored: dict[str, Any]) -> dict[str, Any]:
        return sale_body(await sales.first_answer(session, program_id, stored["sale_id"]))

    return rebuild
