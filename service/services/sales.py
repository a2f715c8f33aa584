"""Sales and refunds: the commission lines of a sale, written with the sale, and the
reversal lines of a refund, written with the refund."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import members as member_sql
from service.db import sales as sale_sql
from service.db.programs import ProgramRow
from service.db.sales import LineRow, NewLine, RefundRow, SaleRow
from service.domain.calculator import (
    LevelDecision,
    Line,
    LineKind,
    Participant,
    SaleFacts,
    calculate,
    refunded_share,
    reversal_lines,
)
from service.domain.money import MoneyError, format_money, format_rate, parse_money
from service.domain.periods import period_of
from service.domain.plan import Compression
from service.errors import (
    CurrencyMismatch,
    InvalidAmount,
    RefundBeforeSale,
    RefundConflict,
    RefundExceedsSale,
    SaleConflict,
    SaleNotFound,
    UnknownMember,
)
from service.services import plans


@dataclass(frozen=True, slots=True)
class SaleInput:
    """A sale as the client posts it; money still as text."""

    sale_id: str
    member_id: str
    amount: str
    currency: str
    volume: str | None
    category: str
    subscription_id: str | None
    customer: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class RefundInput:
    refund_id: str
    amount: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class RecordedSale:
    sale: SaleRow
    lines: list[LineRow]
    created: bool


@dataclass(frozen=True, slots=True)
class RecordedRefund:
    refund: RefundRow
    lines: list[LineRow]
    created: bool


@dataclass(frozen=True, slots=True)
class RefundWithLines:
    refund: RefundRow
    lines: list[LineRow]


@dataclass(frozen=True, slots=True)
class SaleExplained:
    sale: SaleRow
    lines: list[LineRow]
    refunds: list[RefundWithLines]


def _money(value: str, currency: str, field: str, *, allow_zero: bool) -> Decimal:
    try:
        return parse_money(value, currency, allow_zero=allow_zero)
    except MoneyError as error:
        raise InvalidAmount(f"{field}: {error}", field=field) from error


def _fingerprint(fields: dict[str, Any]) -> str:
    """What makes two posts of the same id the same sale (or refund)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _decision_json(decision: LevelDecision, currency: str) -> dict[str, Any]:
    return {
        "level": decision.level,
        "member_id": decision.member_id,
        "paid": decision.paid,
        "paid_level": decision.paid_level,
        "rate": None if decision.rate is None else format_rate(decision.rate),
        "amount": None if decision.amount is None else format_money(decision.amount, currency),
        "reason": None if decision.reason is None else decision.reason.value,
    }


async def record_sale(session: AsyncSession, program: ProgramRow, sale: SaleInput) -> RecordedSale:
    """Store a sale and every line it pays, in the caller's transaction.

    The upline is read as it is now, in one recursive query; the plan is the version in
    force when the sale occurred. Posting the same sale again answers the stored one;
    another sale under the same id is a conflict.
    """
    program_id, currency = program.program_id, program.currency
    if sale.currency != currency:
        raise CurrencyMismatch(f"the program pays in {currency}, not {sale.currency}")
    amount = _money(sale.amount, currency, "amount", allow_zero=False)
    volume = (
        amount if sale.volume is None else _money(sale.volume, currency, "volume", allow_zero=True)
    )
    fingerprint = _fingerprint(
        {
            "member_id": sale.member_id,
            "amount": format_money(amount, currency),
            "volume": format_money(volume, currency),
            "currency": currency,
            "category": sale.category,
            "subscription_id": sale.subscription_id,
            "customer": sale.customer,
            "occurred_at": sale.occurred_at.timestamp(),
        }
    )
    existing = await sale_sql.get_sale(session, program_id, sale.sale_id)
    if existing is not None:
        return await _replayed_sale(session, program_id, existing, fingerprint)

    if await member_sql.get_member(session, program_id, sale.member_id) is None:
        raise UnknownMember(f"member {sale.member_id!r} is not enrolled in this program")
    version = await plans.in_force(session, program_id, currency, sale.occurred_at)
    plan = version.plan
    rates = plan.rates_for(sale.category)
    activity = plan.activity
    entries = await sale_sql.upline_for_sale(
        session,
        program_id,
        seller_id=sale.member_id,
        at=sale.occurred_at,
        depth=rates.depth if rates is not None else 0,
        dynamic=plan.compression is Compression.DYNAMIC,
        window_start=(
            sale.occurred_at - timedelta(days=activity.window_days) if activity else None
        ),
        min_volume=activity.min_personal_volume if activity else None,
    )
    participants = [
        Participant(member_id=e.member_id, status=e.status, personal_volume=e.personal_volume)
        for e in entries
    ]
    calculation = calculate(
        plan,
        SaleFacts(
            sale_id=sale.sale_id,
            seller_id=sale.member_id,
            volume=volume,
            category=sale.category,
            currency=currency,
        ),
        participants[0],
        participants[1:],
    )
    period = period_of(sale.occurred_at, program.timezone)
    inserted = await sale_sql.insert_sale(
        session,
        program_id,
        {
            "sale_id": sale.sale_id,
            "member_id": sale.member_id,
            "amount": amount,
            "volume": volume,
            "currency": currency,
            "category": sale.category,
            "subscription_id": sale.subscription_id,
            "customer": sale.customer,
            "occurred_at": sale.occurred_at,
            "period": period,
            "plan_version": version.version,
            "fingerprint": fingerprint,
            "decisions": [_decision_json(d, currency) for d in calculation.decisions],
        },
    )
    if not inserted:  # the same id committed meanwhile by a concurrent request
        concurrent = await sale_sql.get_sale(session, program_id, sale.sale_id)
        assert concurrent is not None
        return await _replayed_sale(session, program_id, concurrent, fingerprint)
    lines = await sale_sql.insert_lines(
        session,
        program_id,
        sale_id=sale.sale_id,
        refund_id=None,
        source_member_id=sale.member_id,
        period=period,
        plan_version=version.version,
        lines=[_new_line(line) for line in calculation.lines],
    )
    await sale_sql.add_volume(
        session,
        program_id,
        member_id=sale.member_id,
        period=period,
        volume=volume,
        residual=sale.subscription_id is not None,
        sales_count=1,
    )
    stored = await sale_sql.get_sale(session, program_id, sale.sale_id)
    assert stored is not None
    return RecordedSale(sale=stored, lines=lines, created=True)


def _new_line(line: Line) -> NewLine:
    return NewLine(
        earner_id=line.earner_id,
        kind=line.kind.value,
        level=line.level,
        paid_level=line.paid_level,
        rate=line.rate,
        base=line.base,
        amount=line.amount,
    )


async def _replayed_sale(
    session: AsyncSession, program_id: str, existing: SaleRow, fingerprint: str
) -> RecordedSale:
    if existing.fingerprint != fingerprint:
        raise SaleConflict(f"sale {existing.sale_id!r} exists with different details")
    lines = await sale_sql.lines_of_sale(session, program_id, existing.sale_id)
    originals = [line for line in lines if line.refund_id is None]
    return RecordedSale(sale=existing, lines=originals, created=False)


async def explain_sale(session: AsyncSession, program_id: str, sale_id: str) -> SaleExplained:
    """The sale, the lines it paid, and its refunds with their reversal lines."""
    sale = await sale_sql.get_sale(session, program_id, sale_id)
    if sale is None:
        raise SaleNotFound(f"sale {sale_id!r} does not exist")
    lines = await sale_sql.lines_of_sale(session, program_id, sale_id)
    refunds = await sale_sql.refunds_of_sale(session, program_id, sale_id)
    return SaleExplained(
        sale=sale,
        lines=[line for line in lines if line.refund_id is None],
        refunds=[
            RefundWithLines(
                refund=refund,
                lines=[line for line in lines if line.refund_id == refund.refund_id],
            )
            for refund in refunds
        ],
    )


async def refund_sale(
    session: AsyncSession, program: ProgramRow, sale_id: str, refund: RefundInput
) -> RecordedRefund:
    """Take back the refunded share of a sale from exactly the earners, rates and levels
    that were paid on it, whatever happened to the tree or the plan since.

    Refunds may be partial and repeated, never more than what is left of the sale. The
    reversal lines are booked in the sale's period (until period closing exists, every
    period is open); the volume leaves the seller's volume in the period the refund occurs.
    """
    program_id, currency = program.program_id, program.currency
    sale = await sale_sql.get_sale(session, program_id, sale_id, for_update=True)
    if sale is None:
        raise SaleNotFound(f"sale {sale_id!r} does not exist")
    amount = _money(refund.amount, currency, "amount", allow_zero=False)
    fingerprint = _fingerprint(
        {
            "sale_id": sale_id,
            "amount": format_money(amount, currency),
            "occurred_at": refund.occurred_at.timestamp(),
        }
    )
    existing = await sale_sql.get_refund(session, program_id, refund.refund_id)
    if existing is not None:
        if existing.fingerprint != fingerprint:
            raise RefundConflict(f"refund {refund.refund_id!r} exists with different details")
        lines = await sale_sql.lines_of_sale(session, program_id, sale_id)
        return RecordedRefund(
            refund=existing,
            lines=[line for line in lines if line.refund_id == existing.refund_id],
            created=False,
        )
    if refund.occurred_at < sale.occurred_at:
        raise RefundBeforeSale(f"the refund occurred before sale {sale_id!r}")
    left = sale.amount - sale.refunded
    if amount > left:
        raise RefundExceedsSale(
            f"only {format_money(left, currency)} of sale {sale_id!r} is left to refund",
            left=format_money(left, currency),
        )
    originals = [
        line
        for line in await sale_sql.lines_of_sale(session, program_id, sale_id)
        if line.refund_id is None
    ]
    reversals = reversal_lines(
        [
            Line(
                earner_id=line.earner_id,
                kind=LineKind(line.kind),
                level=line.level,
                paid_level=line.paid_level,
                rate=line.rate,
                base=line.base,
                amount=line.amount,
            )
            for line in originals
        ],
        sale_amount=sale.amount,
        refunded_before=sale.refunded,
        refund_amount=amount,
        currency=currency,
    )
    volume = refunded_share(
        sale.volume,
        sale_amount=sale.amount,
        refunded_before=sale.refunded,
        refund_amount=amount,
        currency=currency,
    )
    inserted = await sale_sql.insert_refund(
        session,
        program_id,
        {
            "refund_id": refund.refund_id,
            "sale_id": sale_id,
            "member_id": sale.member_id,
            "amount": amount,
            "volume": volume,
            "occurred_at": refund.occurred_at,
            "period": sale.period,
            "fingerprint": fingerprint,
        },
    )
    if not inserted:
        raise RefundConflict(f"refund {refund.refund_id!r} exists")
    lines = await sale_sql.insert_lines(
        session,
        program_id,
        sale_id=sale_id,
        refund_id=refund.refund_id,
        source_member_id=sale.member_id,
        period=sale.period,
        plan_version=sale.plan_version,
        lines=[
            NewLine(
                earner_id=r.earner_id,
                kind=LineKind.REVERSAL.value,
                level=r.level,
                paid_level=r.paid_level,
                rate=r.rate,
                base=r.base,
                amount=r.amount,
            )
            for r in reversals
        ],
    )
    await sale_sql.add_refunded(session, program_id, sale_id, amount=amount, volume=volume)
    await sale_sql.add_volume(
        session,
        program_id,
        member_id=sale.member_id,
        period=period_of(refund.occurred_at, program.timezone),
        volume=-volume,
        residual=sale.subscription_id is not None,
        sales_count=0,
    )
    stored = await sale_sql.get_refund(session, program_id, refund.refund_id)
    assert stored is not None
    return RecordedRefund(refund=stored, lines=lines, created=True)
