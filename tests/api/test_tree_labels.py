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
from tests.api.flows import check_volume_labels, enroll, post_sale, put_plan, refund
from tests.conftest import Program

PRODUCT = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}
OCTOBER = "2026-10-10T00:00:00Z"
NOVEMBER = "2026-11-10T00:00:00Z"

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


# Every member's team per level by the adjacency list alone, with the team's net volume in
# the period from the volume rows found by member (not by their labels).
PLAIN_TEAM = text(
    """
    WITH RECURSIVE down(member_id, level) AS (
        SELECT CAST(:root AS text), 0
      UNION ALL
        SELECT c.member_id, d.level + 1 FROM down d
        JOIN members c ON c.program_id = :p AND c.sponsor_id = d.member_id
    )
    SELECT d.level, count(*), COALESCE(sum(v.volume), 0)
    FROM down d
    LEFT JOIN member_period_volumes v
           ON v.program_id = :p AND v.member_id = d.member_id AND v.period = :period
    WHERE d.level > 0
    GROUP BY d.level ORDER BY d.level
    """
)


async def check_team_stats(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program, root: str
) -> None:
    """GET .../downline/stats agrees with the adjacency list, in both periods with sales."""
    for period in ("2026-10", "2026-11"):
        response = await client.get(
            f"/v1/members/{root}/downline/stats",
            params={"period": period},
            headers=program.headers,
        )
        assert response.status_code == 200, response.text
        plain = (
            await connection.execute(PLAIN_TEAM, {"p": program.id, "root": root, "period": period})
        ).all()
        assert [(x["level"], x["members"], x["volume"]) for x in response.json()["levels"]] == [
            (level, members, f"{volume:.2f}") for level, members, volume in plain
        ], (root, period)


@pytest.mark.slow
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
    await put_plan(client, program, categories=PRODUCT)
    # A chain deep enough to exhaust the label space between neighbours several times (each
    # level keeps three quarters of its sponsor's gap: about 141 levels use up 2**62, then
    # about 47 more after each relabelling). Its members sell as it grows, so relabelling
    # and moves find volume rows, in two periods, to take along.
    await enroll(client, program, "C0", None)
    for i in range(1, 300):
        await enroll(client, program, f"C{i}", f"C{i - 1}")
        if i % 7 == 0:
            seller = f"C{i // 2}"
            await post_sale(client, program, f"S{i}", seller, f"{i}.00", occurred_at=OCTOBER)
            await post_sale(client, program, f"T{i}", seller, "1.50", occurred_at=NOVEMBER)
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
    for i in range(0, 120, 9):
        await post_sale(client, program, f"X-SALE{i}", f"X{i}", "10.00", occurred_at=NOVEMBER)
    await refund(client, program, "S14", "RF-1", "4.00", occurred_at=NOVEMBER)
    assert await check_labels(connection, program.id) == 511
    assert relabels.count(2) >= 3  # the chain ran out of room
    assert await check_volume_labels(connection, program.id) == 98
    for root in ("C0", "C5", "C100", "R2"):
        await check_team_stats(connection, client, program, root)

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
    assert await check_volume_labels(connection, program.id) == 98
    for root in ("C0", "C5", "C60", "C100", "R2", *rng.sample(everyone, 5)):
        await check_team_stats(connection, client, program, root)
    # and the service's own answers agree
    member = (await client.get("/v1/members/C0", headers=program.headers)).json()
    plain = (await connection.execute(PLAIN_DOWNLINE, {"p": program.id, "root": "C0"})).all()
    assert member["downline_size"] == len(plain)
