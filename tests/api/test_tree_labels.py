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
# Every (ancestor, member, distance) pair by the adjacency list alone: one walk up from
# every member.
PLAIN_CLOSURE = text(
    """
    WITH RECURSIVE closure(ancestor, member_id, level) AS (
        SELECT sponsor_id, member_id, 1 FROM members
        WHERE program_id = :p AND sponsor_id IS NOT NULL
      UNION ALL
        SELECT s.sponsor_id, c.member_id, c.level + 1 FROM closure c
        JOIN members s ON s.program_id = :p AND s.member_id = c.ancestor
        WHERE s.sponsor_id IS NOT NULL
    )
    SELECT ancestor, member_id, level FROM closure
    """
)
# The same pairs by the labels.
LABELLED_CLOSURE = text(
    """
    SELECT r.member_id, d.member_id, d.depth - r.depth FROM members r
    JOIN members d ON d.program_id = r.program_id AND d.lo > r.lo AND d.lo < r.hi
    WHERE r.program_id = :p
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
    plain = set((await connection.execute(PLAIN_CLOSURE, {"p": program_id})).all())
    labelled = set((await connection.execute(LABELLED_CLOSURE, {"p": program_id})).all())
    assert labelled == plain
    depth_of = {member: 0 for member, _, _, _ in members}
    for _, member, level in plain:
        depth_of[member] = max(depth_of[member], level)
    for member, depth, lo, hi in members:
        assert depth == depth_of[member], member
        assert lo < hi
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
    # A chain deep enough to exhaust the label space between neighbours several times (each
    # level keeps three quarters of its sponsor's gap: about 141 levels use up 2**62, then
    # about 47 more after each relabelling).
    await enroll(client, program, "C0", None)
    for i in range(1, 300):
        await enroll(client, program, f"C{i}", f"C{i - 1}")
    # A sponsor with many recruits, each one placed after the last.
    for i in range(90):
        await enroll(client, program, f"F{i}", "C5")
    # A second root, and a random tree hanging from everything.
    await enroll(client, program, "R2", None)
    rng = random.Random(7)
    everyone = ["R2", *(f"C{i}" for i in range(300)), *(f"F{i}" for i in range(90))]
    for i in range(120):
        sponsor = rng.choice(everyone)
        await enroll(client, program, f"X{i}", sponsor)
        everyone.append(f"X{i}")
    assert await check_labels(connection, program.id) == 511
    assert relabels.count(2) >= 3  # the chain ran out of room

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
    assert await check_labels(connection, program.id) == 511
    # and the service's own answers agree
    member = (await client.get("/v1/members/C0", headers=program.headers)).json()
    plain = (await connection.execute(PLAIN_DOWNLINE, {"p": program.id, "root": "C0"})).all()
    assert member["downline_size"] == len(plain)
