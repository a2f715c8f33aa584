"""Booking around closed periods: a sale or refund of a closed month lands in the oldest open
period, and the database refuses any change to a closed period's rows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.api.flows import enroll_chain, post_sale, put_plan, refund
from tests.conftest import Program

PRODUCT = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}


async def _settle_through(connection: AsyncConnection, program: Program, open_from: str) -> None:
    """Every period before `open_from` is closed, as a close leaves the program."""
    await connection.execute(
        text("UPDATE programs SET open_from = :o WHERE program_id = :p"),
        {"o": open_from, "p": program.id},
    )


async def _volumes(connection: AsyncConnection, program: Program) -> dict[tuple[str, str], str]:
    rows = await connection.execute(
        text("SELECT member_id, period, volume FROM member_period_volumes WHERE program_id = :p"),
        {"p": program.id},
    )
    return {(m, period): f"{volume:.2f}" for m, period, volume in rows}


async def _line_periods(connection: AsyncConnection, program: Program) -> list[tuple[Any, ...]]:
    rows = await connection.execute(
        text(
            "SELECT sale_id, refund_id, earner_id, kind, amount, period FROM commission_lines"
            " WHERE program_id = :p ORDER BY line_id"
        ),
        {"p": program.id},
    )
    return [(s, r, e, k, f"{a:.2f}", p) for s, r, e, k, a, p in rows]


async def test_a_sale_of_a_closed_month_is_booked_in_the_oldest_open_period(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await _settle_through(connection, program, "2026-12")
    body = await post_sale(
        client, program, "O-1", "B", "100.00", occurred_at="2026-11-20T10:00:00Z"
    )
    # November is closed: the sale keeps its occurred_at and is booked in December.
    assert body["sale"]["occurred_at"] == "2026-11-20T10:00:00Z"
    assert body["sale"]["period"] == "2026-12"
    assert (await client.get("/v1/sales/O-1", headers=program.headers)).json()["sale"][
        "period"
    ] == "2026-12"
    assert await _line_periods(connection, program) == [
        ("O-1", None, "B", "personal", "10.00", "2026-12"),
        ("O-1", None, "A", "override", "5.00", "2026-12"),
    ]
    assert await _volumes(connection, program) == {("B", "2026-12"): "100.00"}
    # A sale of an open month is booked in its own month.
    later = await post_sale(
        client, program, "O-2", "B", "50.00", occurred_at="2027-01-02T00:00:00Z"
    )
    assert later["sale"]["period"] == "2027-01"


async def test_a_sale_retried_after_the_close_answers_as_first_booked(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    first = await post_sale(
        client, program, "O-1", "B", "100.00", occurred_at="2026-11-20T10:00:00Z"
    )
    await _settle_through(connection, program, "2026-12")
    again = await post_sale(
        client, program, "O-1", "B", "100.00", occurred_at="2026-11-20T10:00:00Z", expect=200
    )
    assert again == first
    assert again["sale"]["period"] == "2026-11"


async def test_a_refund_follows_its_sale_while_open_then_the_oldest_open_period(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-10-20T10:00:00Z")
    # October open: the reversal goes with the sale (October); the volume leaves November,
    # when the refund occurred. 20.00 of 100.00: B gives back 2.00, A 1.00.
    first = await refund(client, program, "O-1", "R-1", "20.00", occurred_at="2026-11-05T00:00:00Z")
    assert first["refund"]["period"] == "2026-10"
    # October and November close; December is the oldest open period.
    await _settle_through(connection, program, "2026-12")
    # The sale's period is closed: reversal lines and refund go to December; the refund
    # occurred in (closed) November, so its volume leaves December too.
    second = await refund(
        client, program, "O-1", "R-2", "30.00", occurred_at="2026-11-25T00:00:00Z"
    )
    assert second["refund"]["period"] == "2026-12"
    # Occurred in January (open): lines to December, volume out of January.
    third = await refund(client, program, "O-1", "R-3", "10.00", occurred_at="2027-01-03T00:00:00Z")
    assert third["refund"]["period"] == "2026-12"
    assert [x[1:] for x in await _line_periods(connection, program) if x[1] is not None] == [
        ("R-1", "B", "reversal", "-2.00", "2026-10"),
        ("R-1", "A", "reversal", "-1.00", "2026-10"),
        ("R-2", "B", "reversal", "-3.00", "2026-12"),
        ("R-2", "A", "reversal", "-1.50", "2026-12"),
        ("R-3", "B", "reversal", "-1.00", "2026-12"),
        ("R-3", "A", "reversal", "-0.50", "2026-12"),
    ]
    assert await _volumes(connection, program) == {
        ("B", "2026-10"): "100.00",
        ("B", "2026-11"): "-20.00",
        ("B", "2026-12"): "-30.00",
        ("B", "2027-01"): "-10.00",
    }


async def test_the_database_refuses_to_change_a_closed_periods_rows(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-11-20T10:00:00Z")
    await _settle_through(connection, program, "2026-12")
    attempts = [
        # a line written straight into November
        """INSERT INTO commission_lines (program_id, sale_id, earner_id, source_member_id, kind,
           level, paid_level, rate, base, amount, period, plan_version)
           VALUES (:p, 'O-1', 'A', 'B', 'personal', 0, 0, 0.1, 1, 1, '2026-11', 1)""",
        "UPDATE member_period_volumes SET volume = volume + 1 WHERE program_id = :p",
        "DELETE FROM member_period_volumes WHERE program_id = :p",
        """INSERT INTO member_period_volumes (program_id, member_id, period, lo, depth)
           VALUES (:p, 'A', '2026-10', 0, 0)""",
        "UPDATE sales SET period = '2026-12' WHERE program_id = :p",
        """INSERT INTO refunds (program_id, refund_id, sale_id, member_id, amount, volume,
           occurred_at, period, fingerprint)
           VALUES (:p, 'R-X', 'O-1', 'B', 1, 1, now(), '2026-11', 'x')""",
    ]
    for attempt in attempts:
        savepoint = await connection.begin_nested()
        with pytest.raises(DBAPIError, match="is closed"):
            await connection.execute(text(attempt), {"p": program.id})
        await savepoint.rollback()
    # A closed period's volume rows may still follow their member's tree labels.
    await connection.execute(
        text("UPDATE member_period_volumes SET lo = lo WHERE program_id = :p"), {"p": program.id}
    )
    # And the sale still takes refunds (its refunded amount changes, never its period).
    await refund(client, program, "O-1", "R-1", "10.00", occurred_at="2026-12-02T00:00:00Z")
