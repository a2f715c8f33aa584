"""Sales and refunds: the commission lines of a sale, written with the sale, and the
reversal lines of a refund, written with the refund."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import periods as period_sql
from service.db import sales as sale_sql
from service.db.programs import ProgramRow
from service.db.sales import (
    LineRow,
    NewLine,
    NewSale,
    PayableSale,
    RefundRow,
    SaleRow,
    UplineEntry,
)
from service.domain import identity
from service.domain.calculator import (
    LevelDecision,
    Line,
    LineKind,
    Participant,
    SaleFacts,
    SkipReason,
    calculate,
    refunded_share,
    reversal_lines,
)
from service.domain.money import MoneyError, format_money, parse_money
from service.domain.periods import booking_period, period_of
from service.domain.plan import Plan
from service.errors import (
    CurrencyMismatch,
    InvalidAmount,
    NoPlanInForce,
    RefundBeforeSale,
    RefundConflict,
    RefundExceedsSale,
    SaleConflict,
    SaleNotFound,
    ServiceError,
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
    lines: list[LineRow] | list[NewLine]
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
    """A sale, its lines, and who held each upline level it looked at: `levels` is paid or
    skipped (and why), nearest first."""

    sale: SaleRow
    lines: list[LineRow]
    levels: list[LevelDecision]
    refunds: list[RefundWithLines]


def _parse_money_field(value: str, currency: str, field: str, *, allow_zero: bool) -> Decimal:
    """A money field of the request (text) as an exact amount of the currency, or an
    InvalidAmount refusal that names the field."""
    try:
        return parse_money(value, currency, allow_zero=allow_zero)
    except MoneyError as error:
        raise InvalidAmount(f"{field}: {error}", field=field) from error


def skipped_levels_json(decisions: Iterable[LevelDecision]) -> str:
    """The decisions of the upline levels a sale did not pay, as the sale stores them: one
    JSON array, encoded once, of each level, its member, the reason and, when the member held
    a paid level, that level with the rate and amount it came to as decimal text; fields that
    do not apply are left out. `explain_sale` reads them back as decisions, and the API
    formats them when it answers."""
    return json.dumps([_stored_decision(d) for d in decisions if not d.paid], separators=(",", ":"))


def _stored_decision(decision: LevelDecision) -> dict[str, int | str]:
    stored: dict[str, int | str] = {"level": decision.level, "member_id": decision.member_id}
    if decision.reason is not None:
        stored["reason"] = decision.reason.value
    if decision.paid_level is not None:
        stored["paid_level"] = decision.paid_level
    if decision.rate is not None:
        stored["rate"] = f"{decision.rate:f}"
    if decision.amount is not None:
        stored["amount"] = f"{decision.amount:f}"
    return stored


def _skipped_decision(stored: dict[str, Any]) -> LevelDecision:
    """A decision stored by `skipped_levels_json`, back as the calculation took it."""
    reason, rate, amount = stored.get("reason"), stored.get("rate"), stored.get("amount")
    return LevelDecision(
        level=stored["level"],
        member_id=stored["member_id"],
        paid=False,
        paid_level=stored.get("paid_level"),
        rate=None if rate is None else Decimal(rate),
        amount=None if amount is None else Decimal(amount),
        reason=None if reason is None else SkipReason(reason),
    )


async def record_sale(session: AsyncSession, program: ProgramRow, sale: SaleInput) -> RecordedSale:
    """Store one sale and every line it pays (see `record_sales`); refusals raise."""
    (result,) = await record_sales(session, program, [sale])
    if isinstance(result, ServiceError):
        raise result
    return result


def _amounts_of(sale: SaleInput, currency: str) -> tuple[Decimal, Decimal]:
    """The sale's amount and volume as money of the program's currency (or a refusal)."""
    if sale.currency != currency:
        raise CurrencyMismatch(f"the program pays in {currency}, not {sale.currency}")
    amount = _parse_money_field(sale.amount, currency, "amount", allow_zero=False)
    volume = (
        amount
        if sale.volume is None
        else _parse_money_field(sale.volume, currency, "volume", allow_zero=True)
    )
    return amount, volume


async def record_sales(
    session: AsyncSession, program: ProgramRow, sales: list[SaleInput]
) -> list[RecordedSale | ServiceError]:
    """Store sales and every line they pay, in the caller's transaction, in two round trips
    whatever their number: one query reads, for every sale, the plan version in force when
    it occurred and the seller's upline as it is now (as far as that plan can pay); the
    calculation is the pure `calculate`; one statement writes the sales, lines and volumes.
    With each sale go the upline levels it did not pay and why (the paid levels are its
    override lines), so that GET /v1/sales/{id} can explain it.

    A sale is booked in the month of its `occurred_at` (the program's timezone) unless that
    month is closed: then, with its lines and volume, in the oldest open period (decided by
    WRITE_SALES under the program's lock, so never in a period a close has just committed).

    Sales are taken in order, as if posted one after another: a sale sees the volume of
    those before it in the window of an activity rule. Posting a sale again answers the
    stored one; another sale under a taken id is a conflict. Each sale answers its own
    result or refusal; a refused sale writes nothing.
    """
    if not sales:
        return []
    program_id, currency = program.program_id, program.currency
    results: list[RecordedSale | ServiceError | None] = [None] * len(sales)
    amounts: dict[int, tuple[Decimal, Decimal, str]] = {}
    for index, sale in enumerate(sales):
        try:
            amount, volume = _amounts_of(sale, currency)
        except ServiceError as error:
            results[index] = error
            continue
        fingerprint = identity.fingerprint(
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
        amounts[index] = (amount, volume, fingerprint)
    asked = [index for index in range(len(sales)) if index in amounts]
    contexts = await sale_sql.sale_contexts(
        session,
        program_id,
        [
            PayableSale(
                sale_id=sales[i].sale_id,
                seller_id=sales[i].member_id,
                category=sales[i].category,
                occurred_at=sales[i].occurred_at,
            )
            for i in asked
        ],
    )
    to_write: list[tuple[int, NewSale]] = []
    first_of: dict[str, int] = {}
    earlier: dict[str, list[tuple[datetime, Decimal]]] = {}
    replays: list[int] = []
    for index, context in zip(asked, contexts, strict=True):
        sale = sales[index]
        amount, volume, fingerprint = amounts[index]
        if context.existing_fingerprint is not None or sale.sale_id in first_of:
            replays.append(index)
            continue
        if context.upline is None:
            results[index] = UnknownMember(
                f"member {sale.member_id!r} is not enrolled in this program"
            )
            continue
        if context.plan_version is None or context.plan_body is None:
            results[index] = NoPlanInForce(
                f"no plan version is in force at {sale.occurred_at.isoformat()}"
            )
            continue
        plan = plans.plan_of(program_id, context.plan_version, context.plan_body, currency)
        participants = _participants(plan, sale.occurred_at, context.upline, earlier)
        calculation = calculate(
            plan,
            SaleFacts(
                sale_id=sale.sale_id,
                seller_id=sale.member_id,
                volume=volume,
                category=sale.category,
                currency=currency,
                occurred_at=sale.occurred_at,
            ),
            participants[0],
            participants[1:],
        )
        period = period_of(sale.occurred_at, program.timezone)
        new_sale = NewSale(
            sale_id=sale.sale_id,
            member_id=sale.member_id,
            amount=amount,
            volume=volume,
            currency=currency,
            category=sale.category,
            subscription_id=sale.subscription_id,
            customer=sale.customer,
            occurred_at=sale.occurred_at,
            period=period,
            plan_version=context.plan_version,
            fingerprint=fingerprint,
            skipped_levels=skipped_levels_json(calculation.decisions),
            lines=[new_line(line) for line in calculation.lines],
        )
        first_of[sale.sale_id] = index
        earlier.setdefault(sale.member_id, []).append((sale.occurred_at, volume))
        to_write.append((index, new_sale))

    written = await sale_sql.write_sales(session, program_id, [n for _, n in to_write])
    now = datetime.now(UTC)
    for index, new_sale in to_write:
        if new_sale.sale_id not in written:  # taken by a concurrent request meanwhile
            replays.append(index)
            continue
        booked = replace(new_sale, period=written[new_sale.sale_id])
        results[index] = RecordedSale(
            sale=_row_of(booked, now), lines=list(new_sale.lines), created=True
        )
    for index in sorted(replays):
        fingerprint = amounts[index][2]
        results[index] = await _replay(session, program_id, sales[index].sale_id, fingerprint)
    return [result for result in results if result is not None]


def _participants(
    plan: Plan,
    at: datetime,
    upline: list[UplineEntry],
    earlier: dict[str, list[tuple[datetime, Decimal]]],
) -> list[Participant]:
    """The seller and upline as the calculation sees them; an upline member's window volume
    also counts the sales of this same batch that came before (not yet in the database)."""
    activity = plan.activity
    start = at - timedelta(days=activity.window_days) if activity else None
    participants = []
    for entry in upline:
        volume = entry.personal_volume
        if start is not None and entry.level > 0:
            volume += sum(
                (v for when, v in earlier.get(entry.member_id, ()) if start <= when < at),
                Decimal(0),
            )
        participants.append(
            Participant(
                member_id=entry.member_id,
                status=entry.status,
                personal_volume=volume,
                enrolled_at=entry.enrolled_at,
                unlocked_levels=plan.levels_unlocked_for(entry.rank),
            )
        )
    return participants


def _row_of(sale: NewSale, now: datetime) -> SaleRow:
    return SaleRow(
        sale_id=sale.sale_id,
        member_id=sale.member_id,
        amount=sale.amount,
        volume=sale.volume,
        currency=sale.currency,
        category=sale.category,
        subscription_id=sale.subscription_id,
        customer=sale.customer,
        occurred_at=sale.occurred_at,
        period=sale.period,
        plan_version=sale.plan_version,
        refunded=Decimal(0),
        refunded_volume=Decimal(0),
        fingerprint=sale.fingerprint,
        skipped_levels=[],  # the explanation is read back by GET /v1/sales/{id}, not answered
        created_at=now,
    )


async def _replay(
    session: AsyncSession, program_id: str, sale_id: str, fingerprint: str
) -> RecordedSale | ServiceError:
    existing = await sale_sql.get_sale(session, program_id, sale_id)
    if existing is None:  # the earlier sale of this batch with that id was refused
        return SaleConflict(f"sale {sale_id!r} was refused earlier in this batch")
    try:
        return await _replayed_sale(session, program_id, existing, fingerprint)
    except ServiceError as error:
        return error


def new_line(line: Line) -> NewLine:
    """A calculated line as the ledger writes it."""
    return NewLine(
        earner_id=line.earner_id,
        kind=line.kind.value,
        level=line.level,
        paid_level=line.paid_level,
        rate=line.rate,
        base=line.base,
        amount=line.amount,
    )


async def _paid_lines(session: AsyncSession, program_id: str, sale_id: str) -> list[LineRow]:
    """The lines the sale paid, without the reversal lines of its refunds."""
    lines = await sale_sql.lines_of_sale(session, program_id, sale_id)
    return [line for line in lines if line.refund_id is None]


async def _replayed_sale(
    session: AsyncSession, program_id: str, existing: SaleRow, fingerprint: str
) -> RecordedSale:
    if existing.fingerprint != fingerprint:
        raise SaleConflict(f"sale {existing.sale_id!r} exists with different details")
    lines = await _paid_lines(session, program_id, existing.sale_id)
    return RecordedSale(sale=existing, lines=lines, created=False)


async def first_answer(session: AsyncSession, program_id: str, sale_id: str) -> RecordedSale:
    """The sale as it was answered when it was created: its lines, and nothing refunded yet
    (every other field of a sale and its lines never change)."""
    sale = await sale_sql.get_sale(session, program_id, sale_id)
    if sale is None:
        raise SaleNotFound(f"sale {sale_id!r} does not exist")
    return RecordedSale(
        sale=replace(sale, refunded=Decimal(0), refunded_volume=Decimal(0)),
        lines=await _paid_lines(session, program_id, sale_id),
        created=True,
    )


async def explain_sale(session: AsyncSession, program_id: str, sale_id: str) -> SaleExplained:
    """The sale, the lines it paid, and its refunds with their reversal lines."""
    sale = await sale_sql.get_sale(session, program_id, sale_id)
    if sale is None:
        raise SaleNotFound(f"sale {sale_id!r} does not exist")
    lines = await sale_sql.lines_of_sale(session, program_id, sale_id)
    refunds = await sale_sql.refunds_of_sale(session, program_id, sale_id)
    originals = [line for line in lines if line.refund_id is None]
    return SaleExplained(
        sale=sale,
        lines=originals,
        levels=_levels(sale, originals),
        refunds=[
            RefundWithLines(
                refund=refund,
                lines=[line for line in lines if line.refund_id == refund.refund_id],
            )
            for refund in refunds
        ],
    )


def _levels(sale: SaleRow, lines: list[LineRow]) -> list[LevelDecision]:
    """Every upline level the calculation looked at, nearest first: the paid ones are the
    sale's override lines, the others were stored with the sale (see `record_sales`)."""
    paid = [
        LevelDecision(
            level=line.level,
            member_id=line.earner_id,
            paid=True,
            paid_level=line.paid_level,
            rate=line.rate,
            amount=line.amount,
            reason=None,
        )
        for line in lines
        if line.kind == LineKind.OVERRIDE
    ]
    skipped = [_skipped_decision(stored) for stored in sale.skipped_levels]
    return sorted([*paid, *skipped], key=lambda decision: decision.level)


async def refund_sale(
    session: AsyncSession, program: ProgramRow, sale_id: str, refund: RefundInput
) -> RecordedRefund:
    """Take back the refunded share of a sale from exactly the earners, rates and levels
    that were paid on it, whatever happened to the tree or the plan since.

    Refunds may be partial and repeated, never more than what is left of the sale. The
    reversal lines, and the refund, are booked in the sale's booked period while it is
    open, else in the oldest open period; the volume leaves the seller's volume in the month
    the refund occurs, or the oldest open period when that month is closed. The program's
    oldest open period is read under its lock, which a close takes alone.
    """
    program_id, currency = program.program_id, program.currency
    open_from = await period_sql.hold_open_from(session, program_id)
    sale = await sale_sql.get_sale(session, program_id, sale_id, for_update=True)
    if sale is None:
        raise SaleNotFound(f"sale {sale_id!r} does not exist")
    amount = _parse_money_field(refund.amount, currency, "amount", allow_zero=False)
    fingerprint = identity.fingerprint(
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
    originals = await _paid_lines(session, program_id, sale_id)
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
    booked = booking_period(sale.period, open_from)
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
            "period": booked,
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
        period=booked,
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
    volume_period = booking_period(period_of(refund.occurred_at, program.timezone), open_from)
    await sale_sql.add_volume(
        session,
        program_id,
        member_id=sale.member_id,
        period=volume_period,
        volume=-volume,
        residual=sale.subscription_id is not None,
        sales_count=0,
    )
    if booked != volume_period:
        # The period of the reversal lines is one with activity, as every booked line's is
        # (a period's volume rows are how the periods with activity are found).
        await sale_sql.add_volume(
            session,
            program_id,
            member_id=sale.member_id,
            period=booked,
            volume=Decimal(0),
            residual=False,
            sales_count=0,
        )
    stored = await sale_sql.get_refund(session, program_id, refund.refund_id)
    assert stored is not None
    return RecordedRefund(refund=stored, lines=lines, created=True)
