"""Reconciliation on random histories: sales (some arriving after their month closed),
refunds and closes in between. For every closed period the statements add up to the
period's lines, what is paid and carried forward is what was earned and carried in, each
statement follows the payout rule, and nothing in a closed period changes afterwards."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from service.domain.closing import settle
from tests.conftest import make_program

MONTHS = 6
PLAN = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}
_programs = itertools.count()


@dataclass(frozen=True)
class Sale:
    seller: int
    cents: int
    month: int  # how many months before the current one it occurred (a late sale when > 0)


@dataclass(frozen=True)
class Refund:
    sale: int  # which earlier sale, modulo how many there are
    percent: int


@dataclass(frozen=True)
class Month:
    events: list[Sale | Refund]
    close: bool


events = st.lists(
    st.one_of(
        st.builds(
            Sale,
            seller=st.integers(0, 5),
            # Round amounts make balances land exactly on a minimum (50.00 pays 5.00).
            cents=st.one_of(st.sampled_from([500, 5_000, 25_000]), st.integers(1, 50_000)),
            month=st.sampled_from([0, 0, 0, 1, 2]),
        ),
        st.builds(Refund, sale=st.integers(0, 50), percent=st.integers(1, 100)),
    ),
    max_size=5,
)
histories = st.fixed_dictionaries(
    {
        "sponsors": st.tuples(*(st.integers(0, i) for i in range(5))),
        "minimum": st.sampled_from([None, "0.50", "5.00", "25.00"]),
        "months": st.lists(
            st.builds(Month, events=events, close=st.booleans()),
            min_size=MONTHS,
            max_size=MONTHS,
        ),
    }
)


LINES = (
    "SELECT line_id, amount FROM commission_lines WHERE program_id = :p AND period = :period"
    " ORDER BY line_id"
)
STATEMENTS = (
    "SELECT member_id, earned, carried_in, payable, carried_out FROM statements"
    " WHERE program_id = :p AND period = :period"
)


async def _figures(
    connection: AsyncConnection, sql: str, program_id: str, period: str
) -> list[Any]:
    return list((await connection.execute(text(sql), {"p": program_id, "period": period})).all())


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories)
async def test_closed_periods_reconcile(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    connection: AsyncConnection,
    history: dict[str, Any],
) -> None:
    program = await make_program(sessions, f"recon-{next(_programs)}")
    headers = program.headers
    plan: dict[str, Any] = {"effective_from": "2025-01-01T00:00:00Z", "categories": PLAN}
    minimum = history["minimum"]
    if minimum is not None:
        plan["payout"] = {"minimum": minimum}
    assert (await client.put("/v1/plan", json=plan, headers=headers)).status_code == 201
    members = ["M0", *(f"M{i + 1}" for i in range(len(history["sponsors"])))]
    for index, member in enumerate(members):
        sponsor = None if index == 0 else members[history["sponsors"][index - 1]]
        response = await client.post(
            "/v1/members",
            json={"id": member, "sponsor_id": sponsor, "enrolled_at": "2025-01-01T00:00:00Z"},
            headers=headers,
        )
        assert response.status_code == 201, response.text

    sales: list[tuple[str, int]] = []  # (id, cents left)
    open_month = 1  # the oldest open month
    frozen: dict[str, list[Any]] = {}  # each closed period's lines, as they were at its close
    for number, month in enumerate(history["months"], start=1):
        for event in month.events:
            if isinstance(event, Sale):
                occurred = max(1, number - event.month)
                sale_id = f"S{len(sales)}"
                response = await client.post(
                    "/v1/sales",
                    json={
                        "id": sale_id,
                        "member_id": members[event.seller],
                        "amount": f"{Decimal(event.cents) / 100:.2f}",
                        "currency": "USD",
                        "occurred_at": f"2026-{occurred:02d}-10T00:00:00Z",
                    },
                    headers=headers,
                )
                assert response.status_code == 201, response.text
                booked = response.json()["sale"]["period"]
                assert booked == f"2026-{max(occurred, open_month):02d}"
                sales.append((sale_id, event.cents))
            elif sales:
                position = event.sale % len(sales)
                sale_id, left = sales[position]
                cents = left * event.percent // 100
                if cents == 0:
                    continue
                response = await client.post(
                    f"/v1/sales/{sale_id}/refunds",
                    json={
                        "id": f"R{number}-{position}-{left}",
                        "amount": f"{Decimal(cents) / 100:.2f}",
                        "occurred_at": f"2026-{number:02d}-20T00:00:00Z",
                    },
                    headers=headers,
                )
                assert response.status_code == 201, response.text
                sales[position] = (sale_id, left - cents)
        if not month.close:
            continue
        while open_month <= number:
            period = f"2026-{open_month:02d}"
            response = await client.post(f"/v1/periods/{period}/close", headers=headers)
            assert response.status_code == 200, response.text
            frozen[period] = await _figures(connection, LINES, program.id, period)
            open_month += 1

    previous: dict[str, Decimal] = {}
    minimum_amount = None if minimum is None else Decimal(minimum)
    for period, lines_at_close in frozen.items():
        lines = await _figures(connection, LINES, program.id, period)
        assert lines == lines_at_close  # a closed period's lines never change
        rows = await _figures(connection, STATEMENTS, program.id, period)
        statements = {r.member_id: r for r in rows}
        assert sum((r.earned for r in rows), Decimal(0)) == sum(
            (amount for _, amount in lines), Decimal(0)
        )
        assert sum((r.payable + r.carried_out for r in rows), Decimal(0)) == sum(
            (r.earned + r.carried_in for r in rows), Decimal(0)
        )
        # Balances carry from one close to the next, and each statement follows the rule.
        assert {m: r.carried_in for m, r in statements.items() if r.carried_in} == previous
        for r in rows:
            settled = settle(r.carried_in, r.earned, minimum_amount)
            assert (r.payable, r.carried_out) == (settled.payable, settled.carried_out)
        previous = {m: r.carried_out for m, r in statements.items() if r.carried_out}
        summary = (await client.get(f"/v1/periods/{period}", headers=headers)).json()
        totals = summary["totals"]
        assert Decimal(totals["payable"]) + Decimal(totals["carried_forward"]) == Decimal(
            totals["earned"]
        ) + Decimal(totals["carried_in"])
        assert summary["statements"] == len(rows)
