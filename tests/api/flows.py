"""Small helpers that drive the HTTP API the way a client does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import labels
from tests.conftest import Program

ENROLLED_AT = "2026-01-01T00:00:00Z"
"""When the helpers enroll members: before every sale the tests post, so that the upline of
a sale was enrolled when it occurred."""


async def put_plan(
    client: httpx.AsyncClient,
    program: Program,
    *,
    effective_from: str = "2026-01-01T00:00:00Z",
    **rules: Any,
) -> dict[str, Any]:
    response = await client.put(
        "/v1/plan", json={"effective_from": effective_from, **rules}, headers=program.headers
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def enroll_chain(client: httpx.AsyncClient, program: Program, *ids: str) -> None:
    """Enroll ids[0] as a root, each next id under the one before it."""
    sponsor = None
    for member_id in ids:
        response = await client.post(
            "/v1/members",
            json={"id": member_id, "sponsor_id": sponsor, "enrolled_at": ENROLLED_AT},
            headers=program.headers,
        )
        assert response.status_code == 201, response.text
        sponsor = member_id


async def enroll(
    client: httpx.AsyncClient,
    program: Program,
    member_id: str,
    sponsor_id: str | None,
    *,
    enrolled_at: str = ENROLLED_AT,
) -> None:
    response = await client.post(
        "/v1/members",
        json={"id": member_id, "sponsor_id": sponsor_id, "enrolled_at": enrolled_at},
        headers=program.headers,
    )
    assert response.status_code == 201, response.text


async def post_sale(
    client: httpx.AsyncClient,
    program: Program,
    sale_id: str,
    member_id: str,
    amount: str,
    *,
    occurred_at: str = "2026-11-03T10:00:00Z",
    expect: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/sales",
        json={
            "id": sale_id,
            "member_id": member_id,
            "amount": amount,
            "currency": program.currency,
            "occurred_at": occurred_at,
            **extra,
        },
        headers=program.headers,
    )
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def refund(
    client: httpx.AsyncClient,
    program: Program,
    sale_id: str,
    refund_id: str,
    amount: str,
    *,
    occurred_at: str = "2026-11-20T10:00:00Z",
    expect: int = 201,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/sales/{sale_id}/refunds",
        json={"id": refund_id, "amount": amount, "occurred_at": occurred_at},
        headers=program.headers,
    )
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


def paid(lines: list[dict[str, Any]]) -> list[tuple[str, str, int, int, str, str]]:
    """(earner, kind, level, paid_level, rate, amount) of each line, in order."""
    return [
        (x["earner_id"], x["kind"], x["level"], x["paid_level"], x["rate"], x["amount"])
        for x in lines
    ]


async def insert_tree(
    connection: AsyncConnection, program_id: str, edges: list[tuple[str, str | None]]
) -> None:
    """Bulk-load members (parents before children) straight into the table, then label the
    tree from the adjacency list: fast set-up for trees too large to enroll one request at
    a time. The reads under test go through HTTP.

    The rows go in as one INSERT of arrays (not a statement per row), and the table's
    statistics are refreshed before the labelling: planned for the nearly empty table it
    was, the labelling walk and UPDATE scan the whole table once per member."""
    await connection.execute(
        text(
            "INSERT INTO members (program_id, member_id, sponsor_id, enrolled_sponsor_id,"
            " enrolled_at, lo, hi, depth)"
            " SELECT :p, m, s, s, :t, 0, 0, 0"
            " FROM unnest(CAST(:members AS text[]), CAST(:sponsors AS text[])) AS n(m, s)"
        ),
        {
            "p": program_id,
            "t": datetime(2026, 1, 1, tzinfo=UTC),
            "members": [member for member, _ in edges],
            "sponsors": [sponsor for _, sponsor in edges],
        },
    )
    await connection.execute(text("ANALYZE members"))
    await labels.rebuild(connection, program_id)


async def cursor_key(connection: AsyncConnection, program: Program) -> bytes:
    """The key that signs the program's cursors, to make cursors the service would accept."""
    key: bytes = (
        await connection.execute(
            text("SELECT cursor_key FROM programs WHERE program_id = :p"), {"p": program.id}
        )
    ).scalar_one()
    return key


async def check_volume_labels(connection: AsyncConnection, program_id: str) -> int:
    """Every volume row carries its member's labels as they are now; answers the rows."""
    rows = (
        await connection.execute(
            text(
                """
                SELECT v.member_id, v.lo = m.lo AND v.depth = m.depth FROM member_period_volumes v
                JOIN members m ON m.program_id = v.program_id AND m.member_id = v.member_id
                WHERE v.program_id = :p
                """
            ),
            {"p": program_id},
        )
    ).all()
    assert [member for member, same in rows if not same] == []
    return len(rows)
