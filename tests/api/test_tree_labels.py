"""The tree labels (a derived index) always agree with the adjacency list, walked by the
plain recursive CTE, through enrolments, relabelling and moves."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import labels as labels_sql
from tests.conftest import Program

# The source of truth: the team below :root by the adjacency list alone.
PLAIN_DOWNLINE = text(
    """
    WITH RECURSIVE down(member_id, level) AS (
        SELECT member_id, 1 FROM members WHERE program_id = :p AND sponsor_id = :root
      UNION ALL
        SELECT c.member_id, d.level + 1 FROM down d
        JOIN members c ON c.program_id = :p AND c.sponsor_id = d.member_id
    )
    SELECT member_id, level FROM down
    """
)
PLAIN_DEPTH = text(
    """
    WITH RECURSIVE up(member_id, sponsor_id) AS (
        SELECT member_id, sponsor_id FROM members WHERE program_id = :p AND member_id = :m
      UNION ALL
        SELECT s.member_id, s.sponsor_id FROM up
        JOIN members s ON s.program_id = :p AND s.member_id = up.sponsor_id
    )
    SELECT count(*) - 1 FROM up
    """
)
BY_LABELS = text(
    """
    SELECT d.member_id, d.depth - r.depth AS level FROM members r
    JOIN members d ON d.program_id = r.program_id AND d.lo > r.lo AND d.lo < r.hi
    WHERE r.program_id = :p AND r.member_id = :root
    """
)


async def check_labels(connection: AsyncConnection, program_id: str) -> int:
    """Every member's labelled team and depth equal what the adjacency list says."""
    members = (
        await connection.execute(
            text("SELECT member_id, depth, lo, hi FROM members WHERE program_id = :p"),
            {"p": program_id},
        )
    ).all()
    for row in members:
        plain = set(
            (await connection.execute(PLAIN_DOWNLINE, {"p": program_id, "root": row[0]})).all()
        )
        labelled = set(
            (await connection.execute(BY_LABELS, {"p": program_id, "root": row[0]})).all()
        )
        assert labelled == plain, row[0]
        depth = (await connection.execute(PLAIN_DEPTH, {"p": program_id, "m": row[0]})).scalar_one()
        assert row[1] == depth, row[0]
        assert row[2] < row[3]
    labels = [label for row in members for label in (row[2], row[3])]
    assert len(labels) == len(set(labels))  # no two members share a label
    return len(members)


async def enroll(
    client: httpx.AsyncClient, program: Program, member: str, sponsor: str | None
) -> None:
    response = await client.post(
        "/v1/members", json={"id": member, "sponsor_id": sponsor}, headers=program.headers
    )
    assert response.status_code == 201, response.text


async def test_labels_follow_enrolments_relabelling_and_moves(
    connection: AsyncConnection,
    client: httpx.AsyncClient,
    program: Program,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relabels: list[int] = []
    make_room = labels_sql.make_room

    async def counted(*args: Any, **kwargs: Any) -> tuple[int, int]:
        relabels.append(kwargs["room"])
        return await make_room(*args, **kwargs)

    monkeypatch.setattr(labels_sql, "make_room", counted)
    # A chain deep enough to exhaust the label space between neighbours many times (each
    # level takes a third of its sponsor's gap: about 39 levels use up 2**62).
    await enroll(client, program, "C0", None)
    for i in range(1, 130):
        await enroll(client, program, f"C{i}", f"C{i - 1}")
    # A sponsor with many recruits, each one placed after the last.
    for i in range(90):
        await enroll(client, program, f"F{i}", "C5")
    # A second root, and a random tree hanging from everything.
    await enroll(client, program, "R2", None)
    rng = random.Random(7)
    everyone = ["R2", *(f"C{i}" for i in range(130)), *(f"F{i}" for i in range(90))]
    for i in range(120):
        sponsor = rng.choice(everyone)
        await enroll(client, program, f"X{i}", sponsor)
        everyone.append(f"X{i}")
    assert await check_labels(connection, program.id) == 341
    assert relabels.count(2) >= 3  # the chain and the wide sponsor ran out of room

    # Moves: whole teams change place, including into the densest spots and to the top.
    moved = 0
    for _ in range(40):
        mover, sponsor = rng.sample(everyone, 2)
        response = await client.post(
            f"/v1/members/{mover}/move", json={"sponsor_id": sponsor}, headers=program.headers
        )
        assert response.status_code in (200, 409), response.text
        moved += response.status_code == 200
    response = await client.post(
        "/v1/members/C60/move", json={"sponsor_id": None}, headers=program.headers
    )
    assert response.status_code == 200
    assert moved > 20
    assert await check_labels(connection, program.id) == 341
    # and the service's own answers agree
    member = (await client.get("/v1/members/C0", headers=program.headers)).json()
    plain = (await connection.execute(PLAIN_DOWNLINE, {"p": program.id, "root": "C0"})).all()
    assert member["downline_size"] == len(plain)
