"""SALE_CONTEXT (service/db/sales.py) walks a seller's upline only as far as the plan can pay,
and so repeats in SQL who is qualified (enrolled when the sale occurred, active, with the
activity rule's volume) and how compression uses up levels. This differential test keeps
the two equal: random chains, a sale recorded through the service, and the pure
`calculate` run over the whole chain read back with a plain query, must give the same lines
and the same skipped levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import programs as program_sql
from service.db import sales as sale_sql
from service.domain.calculator import Participant, SaleFacts, calculate
from service.domain.plan import parse_plan
from service.services import members, plans, programs
from service.services import sales as sale_service
from service.services.members import EnrollInput
from service.services.sales import RefundInput, SaleInput

SALE_AT = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def moments(window_days: int) -> st.SearchStrategy[timedelta]:
    """Instants relative to the sale: long before, on either side of the start of the
    activity window and of the sale itself, and after it."""
    start = timedelta(days=-window_days)
    return st.sampled_from(
        [
            timedelta(days=-40),
            start - MICROSECOND,
            start,
            start + MICROSECOND,
            timedelta(hours=-1),
            -MICROSECOND,
            timedelta(0),
            MICROSECOND,
            timedelta(hours=1),
        ]
    )


@dataclass(frozen=True)
class PriorSale:
    member: int  # 0 is the seller, n the n-th upline member
    amount: str
    at: datetime
    refund: tuple[str, datetime] | None  # amount and instant


@dataclass(frozen=True)
class Scenario:
    statuses: list[str]  # the seller's first, then the upline's, nearest first
    enrolled_ats: list[datetime]
    rules: dict[str, Any]
    prior_sales: list[PriorSale]
    amount: str


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    size = draw(st.integers(1, 9))  # the seller and up to 8 upline members
    statuses = draw(
        st.lists(
            st.sampled_from(["active", "active", "active", "inactive", "terminated"]),
            min_size=size,
            max_size=size,
        )
    )
    rates = st.sampled_from(["0", "0.01", "0.05", "0.10"])
    rules: dict[str, Any] = {
        "categories": {
            "product": {
                "personal_rate": draw(rates),
                "level_rates": draw(st.lists(rates, min_size=1, max_size=4)),
            }
        },
        "compression": draw(st.sampled_from(["none", "dynamic"])),
    }
    window_days = draw(st.sampled_from([1, 7, 30]))
    if draw(st.booleans()):
        rules["activity"] = {
            "min_personal_volume": draw(st.sampled_from(["10.00", "50.00"])),
            "window_days": window_days,
        }
    instants = moments(window_days)
    enrolled_ats = [SALE_AT + draw(instants) for _ in range(size)]
    if draw(st.booleans()):
        rules["max_payout_ratio"] = "0.12"
    prior_sales = []
    for _ in range(draw(st.integers(0, 8))):
        amount = draw(st.sampled_from(["5.00", "20.00", "60.00"]))
        at = SALE_AT + draw(instants)
        refund = None
        if draw(st.sampled_from([True, True, False])):
            # Never before its sale; often at the very edges of the window, where a refund
            # takes its volume out or not.
            edge = st.sampled_from([timedelta(0), timedelta(days=-window_days)])
            refund = (
                draw(st.sampled_from(["1.00", amount, amount])),
                max(at, SALE_AT + draw(edge | instants)),
            )
        # The seller's own volume is never read: the sales go to the upline when there is one.
        seller = draw(st.integers(min(1, size - 1), size - 1))
        prior_sales.append(PriorSale(seller, amount, at, refund))
    amount = draw(st.sampled_from(["100.00", "33.33", "0.07"]))
    return Scenario(statuses, enrolled_ats, rules, prior_sales, amount)


def _member_id(index: int) -> str:
    return "S" if index == 0 else f"U{index}"


async def _build(session: AsyncSession, scenario: Scenario) -> None:
    """The program, its plan, the chain (root first) and the earlier sales and refunds,
    through the service; then each member's status and enrolment time, written straight
    into the table: the SQL and the domain must agree on any stored tree, those from before
    the enrolment order was enforced too."""
    await programs.create_program(
        session, program_id="diff", currency="USD", timezone="UTC", name=None
    )
    await plans.add_version(session, "diff", "USD", effective_from=LONG_AGO, rules=scenario.rules)
    size = len(scenario.statuses)
    chain = [
        EnrollInput(
            _member_id(index),
            None if index == size - 1 else _member_id(index + 1),
            LONG_AGO,
            None,
        )
        for index in reversed(range(size))
    ]
    await members.enroll_many(session, "diff", chain)
    program = await program_sql.get_program(session, "diff")
    assert program is not None
    prior = [
        SaleInput(
            sale_id=f"P{number}",
            member_id=_member_id(sale.member),
            amount=sale.amount,
            currency="USD",
            volume=None,
            category="product",
            subscription_id=None,
            customer="retail",
            occurred_at=sale.at,
        )
        for number, sale in enumerate(scenario.prior_sales)
    ]
    for recorded in await sale_service.record_sales(session, program, prior):
        assert isinstance(recorded, sale_service.RecordedSale)
    for number, sale in enumerate(scenario.prior_sales):
        if sale.refund is not None:
            amount, at = sale.refund
            await sale_service.refund_sale(
                session, program, f"P{number}", RefundInput(f"R{number}", amount, at)
            )
    await session.execute(
        text(
            "UPDATE members SET status = :status, enrolled_at = :at"
            " WHERE program_id = 'diff' AND member_id = :member"
        ),
        [
            {"member": _member_id(index), "status": status, "at": at}
            for index, (status, at) in enumerate(
                zip(scenario.statuses, scenario.enrolled_ats, strict=True)
            )
        ],
    )


async def _whole_chain(session: AsyncSession, rules: dict[str, Any]) -> list[Participant]:
    """The seller and every member above them, read plainly, with each member's net personal
    volume in the activity window before the sale, [SALE_AT - window, SALE_AT)."""
    rows = await session.execute(
        text(
            "SELECT member_id, sponsor_id, status, enrolled_at FROM members"
            " WHERE program_id = 'diff'"
        )
    )
    tree = {row.member_id: row for row in rows}
    volumes = [
        (row.member_id, row.volume, row.occurred_at)
        for query in (
            "SELECT member_id, volume, occurred_at FROM sales WHERE program_id = 'diff'",
            "SELECT member_id, -volume AS volume, occurred_at FROM refunds"
            " WHERE program_id = 'diff'",
        )
        for row in await session.execute(text(query))
    ]
    activity = rules.get("activity")
    start = SALE_AT - timedelta(days=activity["window_days"]) if activity else None
    chain: list[Participant] = []
    member_id: str | None = "S"
    while member_id is not None:
        row = tree[member_id]
        window = Decimal(0)
        if start is not None:
            window = sum(
                (v for m, v, at in volumes if m == member_id and start <= at < SALE_AT),
                Decimal(0),
            )
        chain.append(Participant(member_id, row.status, window, row.enrolled_at))
        member_id = row.sponsor_id
    return chain


def _decision(level: dict[str, Any]) -> tuple[Any, ...]:
    def number(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    # A stored skipped level: a decision not paid, with the fields that apply to it.
    return (
        level["level"],
        level["member_id"],
        False,
        level.get("paid_level"),
        number(level.get("rate")),
        number(level.get("amount")),
        level["reason"],
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_a_recorded_sale_pays_what_calculate_pays_over_the_whole_chain(
    sessions: async_sessionmaker[AsyncSession], scenario: Scenario
) -> None:
    # One session per example, never committed: closing it rolls back its savepoint, so
    # each example starts from the test's empty transaction (the program id is reused).
    async with sessions() as session:
        await _build(session, scenario)
        program = await program_sql.get_program(session, "diff")
        assert program is not None
        recorded = await sale_service.record_sale(
            session,
            program,
            SaleInput(
                sale_id="O",
                member_id="S",
                amount=scenario.amount,
                currency="USD",
                volume=None,
                category="product",
                subscription_id=None,
                customer="retail",
                occurred_at=SALE_AT,
            ),
        )
        assert recorded.created
        stored_sale = await sale_sql.get_sale(session, "diff", "O")
        assert stored_sale is not None
        stored_lines = await sale_sql.lines_of_sale(session, "diff", "O")

        chain = await _whole_chain(session, scenario.rules)
        expected = calculate(
            parse_plan(scenario.rules, "USD"),
            SaleFacts("O", "S", Decimal(scenario.amount), "product", "USD", SALE_AT),
            chain[0],
            chain[1:],
        )
        await session.rollback()

    assert [
        (x.earner_id, x.kind, x.level, x.paid_level, x.rate, x.base, x.amount) for x in stored_lines
    ] == [
        (x.earner_id, x.kind.value, x.level, x.paid_level, x.rate, x.base, x.amount)
        for x in expected.lines
    ]
    assert [_decision(level) for level in stored_sale.skipped_levels] == [
        (d.level, d.member_id, d.paid, d.paid_level, d.rate, d.amount, d.reason)
        for d in expected.decisions
        if not d.paid
    ]
