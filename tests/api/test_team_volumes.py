"""Volume rows carry their member's tree labels (migration 0009): a volume row written while
the labels change concurrently still ends with the labels that were committed last."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import programs as program_sql
from service.db import sales as sale_sql
from service.services import sales
from service.services.sales import SaleInput
from tests.api.flows import enroll_chain, put_plan
from tests.conftest import Program

PRODUCT = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}

MOVE_LABEL = text(
    "UPDATE members SET lo = lo + 1 WHERE program_id = :p AND member_id = :m RETURNING lo"
)
LABELS = text(
    """
    SELECT m.lo, v.lo, v.volume FROM members m
    JOIN member_period_volumes v ON v.program_id = m.program_id AND v.member_id = m.member_id
    WHERE m.program_id = :p AND m.member_id = :m AND v.period = '2026-11'
    """
)
WAIT = 0.5


async def _add_volume(
    session: AsyncSession, program_id: str, volume: str, *, by_sale: bool
) -> None:
    """X's volume grows: by a sale, through the sale's own path (SALE_CONTEXT, WRITE_SALES),
    or as a refund's volume is written (HOLD_LABELS, then ADD_VOLUME)."""
    program = await program_sql.get_program(session, program_id)
    assert program is not None
    if not by_sale:
        await sale_sql.add_volume(
            session,
            program_id,
            member_id="X",
            period="2026-11",
            volume=Decimal(volume),
            residual=False,
            sales_count=1,
        )
        return
    await sales.record_sale(
        session,
        program,
        SaleInput(
            sale_id=f"S-{volume}",
            member_id="X",
            amount=volume,
            currency="USD",
            volume=None,
            category="product",
            subscription_id=None,
            customer="retail",
            occurred_at=datetime(2026, 11, 10, tzinfo=UTC),
        ),
    )


@pytest.fixture(params=[False, True], ids=["refund path", "sale path"])
async def by_sale(
    request: pytest.FixtureRequest, live_client: httpx.AsyncClient, live_program: Program
) -> bool:
    """R <- X; with a plan when X's volume is to grow by a sale."""
    await enroll_chain(live_client, live_program, "R", "X")
    if request.param:
        await put_plan(live_client, live_program, categories=PRODUCT)
    return bool(request.param)


async def test_a_relabelling_waits_for_a_volume_row_written_with_the_old_labels(
    live_sessions: async_sessionmaker[AsyncSession], live_program: Program, by_sale: bool
) -> None:
    params = {"p": live_program.id, "m": "X"}

    async def relabel() -> int:
        async with live_sessions() as session, session.begin():
            return int((await session.execute(MOVE_LABEL, params)).scalar_one())

    async with live_sessions() as sale, sale.begin():
        # a new row, with X's labels as they are now
        await _add_volume(sale, live_program.id, "5.00", by_sale=by_sale)
        relabelling = asyncio.create_task(relabel())
        await asyncio.sleep(WAIT)
        assert not relabelling.done()  # its trigger waits for this transaction
    new_lo = await asyncio.wait_for(relabelling, 10)
    async with live_sessions() as session:
        row = (await session.execute(LABELS, params)).one()
    assert tuple(row) == (new_lo, new_lo, Decimal("5.00"))


async def test_a_volume_row_waits_for_a_relabelling_under_way(
    live_sessions: async_sessionmaker[AsyncSession], live_program: Program, by_sale: bool
) -> None:
    params = {"p": live_program.id, "m": "X"}

    async def sell() -> None:
        async with live_sessions() as session, session.begin():
            await _add_volume(session, live_program.id, "7.00", by_sale=by_sale)

    async with live_sessions() as relabelling, relabelling.begin():
        new_lo = (await relabelling.execute(MOVE_LABEL, params)).scalar_one()
        selling = asyncio.create_task(sell())
        await asyncio.sleep(WAIT)
        assert not selling.done()  # it waits to read X's labels until they are committed
    await asyncio.wait_for(selling, 10)
    async with live_sessions() as session:
        row = (await session.execute(LABELS, params)).one()
    assert tuple(row) == (new_lo, new_lo, Decimal("7.00"))
