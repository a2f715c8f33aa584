"""A batch of events has the outcome of the same events applied one at a time."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from tests.api.flows import check_volume_labels, put_plan
from tests.conftest import make_program

PLAN: dict[str, Any] = {
    "categories": {
        "product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.04", "0.03", "0.02"]},
        "enrollment_fee": {"personal_rate": "0", "level_rates": ["0.20"]},
    },
    "compression": "dynamic",
    "activity": {"min_personal_volume": "30.00", "window_days": 10},
    "max_payout_ratio": "0.20",
}


def _events(seed: int) -> list[dict[str, Any]]:
    """Enrolments, sales (some before their seller is enrolled, some repeated, some invalid),
    status changes, moves and refunds, in an order a real store could send."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    members: list[str] = []
    for i in range(160):
        roll = rng.random()
        day = 1 + i // 8
        at = f"2026-11-{day:02d}T{i % 24:02d}:00:00Z"
        if roll < 0.35 or len(members) < 3:
            member = f"M{i}"
            sponsor = rng.choice(members) if members else None
            if rng.random() < 0.05:
                sponsor = "NOBODY"
            events.append(
                {
                    "id": f"e{i}",
                    "type": "member.enrolled",
                    "occurred_at": at,
                    "data": {"id": member, "sponsor_id": sponsor, "enrolled_at": at},
                }
            )
            members.append(member)
        elif roll < 0.85:
            seller = rng.choice([*members, f"M{i + 3}"])  # sometimes enrolled only later
            amount = rng.choice(["10.00", "25.50", "40.00", "7.77", "99.99"])
            category = "enrollment_fee" if rng.random() < 0.2 else "product"
            events.append(
                {
                    "id": f"e{i}",
                    "type": "sale.completed",
                    "occurred_at": at,
                    "data": {
                        "id": f"O{i}",
                        "member_id": seller,
                        "amount": amount,
                        "currency": "USD",
                        "category": category,
                        "occurred_at": at,
                    },
                }
            )
            if rng.random() < 0.1:
                events.append(dict(events[-1]))  # a retried delivery, right behind
        elif roll < 0.92:
            events.append(
                {
                    "id": f"e{i}",
                    "type": "member.updated",
                    "occurred_at": at,
                    "data": {
                        "id": rng.choice(members),
                        "status": rng.choice(["inactive", "active"]),
                    },
                }
            )
        elif roll < 0.96:
            mover, sponsor = rng.sample(members, 2)
            events.append(
                {
                    "id": f"e{i}",
                    "type": "member.moved",
                    "occurred_at": at,
                    "data": {"id": mover, "sponsor_id": sponsor},
                }
            )
        else:
            sales = [e for e in events if e["type"] == "sale.completed"]
            if sales:
                sale = rng.choice(sales)["data"]
                events.append(
                    {
                        "id": f"e{i}",
                        "type": "sale.refunded",
                        "occurred_at": at,
                        "data": {
                            "sale_id": sale["id"],
                            "id": f"R{i}",
                            "amount": "1.00",
                            "occurred_at": at,
                        },
                    }
                )
    return events


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_answers_what_one_at_a_time_answers(
    connection: AsyncConnection,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    seed: int,
) -> None:
    one_by_one = await make_program(sessions, "one-by-one")
    batched = await make_program(sessions, "batched")
    for program in (one_by_one, batched):
        await put_plan(client, program, effective_from="2026-01-01T00:00:00Z", **PLAN)
    events = _events(seed)

    singles = []
    for event in events:
        response = await client.post("/v1/events", json=event, headers=one_by_one.headers)
        body = response.json()
        singles.append(
            (
                body.get("id"),
                response.status_code,
                body.get("code"),
                body.get("duplicate"),
                body.get("body"),
            )
        )
    response = await client.post("/v1/events", json={"events": events}, headers=batched.headers)
    batch = [
        (r["id"], r["status"], r.get("code"), r.get("duplicate"), r.get("body"))
        for r in response.json()["results"]
    ]

    def comparable(outcome: tuple[Any, ...]) -> tuple[Any, ...]:
        event_id, status, code, duplicate, body = outcome
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "updated_at"}
        return event_id, status, code, duplicate, body

    assert [comparable(o) for o in batch] == [comparable(o) for o in singles]
    applied = sum(1 for _, status, *_ in batch if status < 300)
    refused = {code for _, _, code, *_ in batch if code}
    assert {"unknown_member", "unknown_sponsor"} <= refused
    assert applied > 60  # the scenario really exercises the batch path
    # And the ledgers agree line for line.
    for member in ("M0", "M1", "M2"):
        a = (
            await client.get(
                f"/v1/members/{member}/commissions?limit=1000", headers=one_by_one.headers
            )
        ).json()
        b = (
            await client.get(
                f"/v1/members/{member}/commissions?limit=1000", headers=batched.headers
            )
        ).json()
        assert _ledger(a["items"]) == _ledger(b["items"])
        stats = [
            (
                await client.get(
                    f"/v1/members/{member}/downline/stats?period=2026-11", headers=p.headers
                )
            ).json()
            for p in (one_by_one, batched)
        ]
        assert stats[0] == stats[1]
    # The volume rows, written in batches that also enrolled and moved members, carry their
    # members' labels as they are now.
    assert await check_volume_labels(connection, one_by_one.id) > 10
    assert await check_volume_labels(connection, batched.id) > 10


def _ledger(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger lines without what differs between two programs' ledgers (ids, times)."""
    return [{k: v for k, v in x.items() if k not in ("id", "created_at")} for x in items]
