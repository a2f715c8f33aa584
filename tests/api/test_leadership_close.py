"""Ranks end to end: a plan with ranks put through the API; the close deciding paid-as
ranks with the figures that decided them and paying bonus lines of every kind, in the
statements and the summary; an advancement paid once across two closes; a dry run that
keeps nothing; rank progress frozen and open; overrides gated by the rank in force."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.flows import enroll_chain, post_sale
from tests.conftest import Program, make_program

D = Decimal
OCTOBER = "2026-10-05T00:00:00Z"

RANKED_PLAN: dict[str, Any] = {
    "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}},
    "ranks": [
        {"name": "Bronze", "min_personal_volume": "100.00", "differential_rate": "0.02"},
        {
            "name": "Silver",
            "min_personal_volume": "100.00",
            "min_organization_volume": "500.00",
            "differential_rate": "0.04",
            "matching_rates": ["0.10"],
            "pool_shares": 1,
            "advancement_bonus": "50.00",
        },
    ],
    "leadership_pool": {"rate": "0.01"},
}


async def store_plan(client: httpx.AsyncClient, program: Program, rules: dict[str, Any]) -> None:
    response = await client.put(
        "/v1/plan",
        json={"effective_from": "2026-01-01T00:00:00Z", **rules},
        headers=program.headers,
    )
    assert response.status_code == 201, response.text


async def close(
    client: httpx.AsyncClient, program: Program, period: str, *, dry_run: bool = False
) -> dict[str, Any]:
    params = {"dry_run": "true"} if dry_run else {}
    response = await client.post(
        f"/v1/periods/{period}/close", params=params, headers=program.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def rows(sessions: async_sessionmaker[AsyncSession], sql: str, **bound: Any) -> list[Any]:
    async with sessions() as session:
        return [tuple(row) for row in await session.execute(text(sql), bound)]


async def bonus_lines(
    sessions: async_sessionmaker[AsyncSession], program: Program, period: str
) -> list[tuple[str, str, str, int, str, str, str]]:
    found = await rows(
        sessions,
        """
        SELECT bonus, earner_id, source_member_id, level, rate, base, amount
        FROM commission_lines
        WHERE program_id = :p AND period = :period AND kind = 'bonus'
        ORDER BY bonus, earner_id, source_member_id
        """,
        p=program.id,
        period=period,
    )
    return [
        (b, e, s, lv, f"{r.normalize():f}", f"{base:.2f}", f"{a:.2f}")
        for b, e, s, lv, r, base, a in found
    ]


def PV_100_OF(actual: str) -> dict[str, Any]:  # noqa: N802 - reads as the requirement it is
    return {"requirement": "min_personal_volume", "required": "100.00", "actual": actual,
            "met": Decimal(actual) >= 100}  # fmt: skip


async def rank_of(
    client: httpx.AsyncClient, program: Program, member_id: str, period: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/members/{member_id}/rank", params={"period": period}, headers=program.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["member_id"], body["period"], body["currency"]) == (member_id, period, "USD")
    return body


async def member_ranks(
    sessions: async_sessionmaker[AsyncSession], program: Program
) -> dict[str, tuple[str | None, str | None]]:
    found = await rows(
        sessions,
        "SELECT member_id, rank, achieved_rank FROM members WHERE program_id = :p",
        p=program.id,
    )
    return {member: (rank, achieved) for member, rank, achieved in found}


async def test_a_close_decides_ranks_and_pays_every_bonus(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], program: Program
) -> None:
    await store_plan(client, program, RANKED_PLAN)
    await enroll_chain(client, program, "A", "B", "C")
    # October: C sells 300.00 (C 30.00 personal, B 15.00 level 1, A 9.00 level 2); B sells
    # 150.00 (B 15.00, A 7.50); A sells 100.00 (A 10.00). Personal 55.00, override 31.50.
    for sale_id, seller, amount in (("O-1", "C", "300.00"), ("O-2", "B", "150.00")):
        await post_sale(
            client, program, sale_id, seller, amount, occurred_at="2026-10-05T00:00:00Z"
        )
    await post_sale(client, program, "O-3", "A", "100.00", occurred_at="2026-10-06T00:00:00Z")

    # PV: A 100, B 150, C 300; OV: C 300, B 450, A 550. C and B: Bronze (OV below 500);
    # A: Silver (PV 100, OV 550).
    # Differential: C's 300 pays C 2 % (6.00) and A the 2 % more of Silver (6.00); B's 150
    # pays B 3.00 and A 3.00; A's 100 pays A 4 % (4.00). In all 22.00.
    # Matching: A (Silver, 10 % of generation 1) on what B earned: 15.00 personal + 15.00
    # override + 3.00 differential = 33.00 -> 3.30.
    # Pool: 1 % of the net volume 550.00 = 5.50, all of it to A (the only share).
    # Advancement: A reaches Silver for the first time: 50.00.
    # Bonus 80.80; earned 55.00 + 31.50 + 80.80 = 167.30, all payable (no minimum).
    dry = await close(client, program, "2026-10", dry_run=True)
    assert (await bonus_lines(sessions, program, "2026-10")) == []
    assert await member_ranks(sessions, program) == {m: (None, None) for m in "ABC"}
    for table in ("period_ranks", "statements", "closed_periods", "advancements"):
        sql = f"SELECT 1 FROM {table} WHERE program_id = :p"  # noqa: S608 - names above
        assert await rows(sessions, sql, p=program.id) == [], table

    october = await close(client, program, "2026-10")
    assert october["ranks"] == {"Bronze": 2, "Silver": 1}
    assert october["totals"] == {
        "personal": "55.00",
        "override": "31.50",
        "reversal": "0.00",
        "bonus": {
            "differential": "22.00",
            "matching": "3.30",
            "pool": "5.50",
            "advancement": "50.00",
        },
        "earned": "167.30",
        "carried_in": "0.00",
        "payable": "167.30",
        "carried_forward": "0.00",
    }
    assert {**dry, "status": "closed", "closed_at": october["closed_at"]} == october
    assert await bonus_lines(sessions, program, "2026-10") == [
        ("advancement", "A", "A", 0, "1", "50.00", "50.00"),
        ("differential", "A", "A", 0, "0.04", "100.00", "4.00"),
        ("differential", "A", "B", 1, "0.02", "150.00", "3.00"),
        ("differential", "A", "C", 2, "0.02", "300.00", "6.00"),
        ("differential", "B", "B", 0, "0.02", "150.00", "3.00"),
        ("differential", "C", "C", 0, "0.02", "300.00", "6.00"),
        ("matching", "A", "B", 1, "0.1", "33.00", "3.30"),
        ("pool", "A", "A", 0, "1", "5.50", "5.50"),
    ]
    # The figures that decided each rank, as they stood at the close.
    assert await rows(
        sessions,
        """
        SELECT member_id, sponsor_id, active, personal_volume, organization_volume,
               active_recruits, rank, best_rank
        FROM period_ranks WHERE program_id = :p AND period = '2026-10' ORDER BY member_id
        """,
        p=program.id,
    ) == [
        ("A", None, True, D("100.00"), D("550.00"), 1, "Silver", "Silver"),
        ("B", "A", True, D("150.00"), D("450.00"), 1, "Bronze", "Bronze"),
        ("C", "B", True, D("300.00"), D("300.00"), 0, "Bronze", "Bronze"),
    ]
    assert await member_ranks(sessions, program) == {
        "A": ("Silver", "Silver"),
        "B": ("Bronze", "Bronze"),
        "C": ("Bronze", "Bronze"),
    }
    page = (await client.get("/v1/periods/2026-10/statements", headers=program.headers)).json()
    assert [
        (s["member_id"], s["rank"], s["personal"], s["override"], s["bonus"], s["earned"])
        for s in page["items"]
    ] == [
        # A: 13.00 differential + 3.30 matching + 5.50 pool + 50.00 advancement = 71.80
        ("A", "Silver", "10.00", "16.50", "71.80", "98.30"),
        ("B", "Bronze", "15.00", "15.00", "3.00", "33.00"),
        ("C", "Bronze", "30.00", "0.00", "6.00", "36.00"),
    ]

    statement = (
        await client.get("/v1/members/A/statements/2026-10", headers=program.headers)
    ).json()
    assert statement["bonus_lines"] == [
        {"bonus": "advancement", "source_member_id": "A", "level": 0, "base": "50.00",
         "rate": "1.00", "amount": "50.00"},
        {"bonus": "differential", "source_member_id": "A", "level": 0, "base": "100.00",
         "rate": "0.04", "amount": "4.00"},
        {"bonus": "differential", "source_member_id": "B", "level": 1, "base": "150.00",
         "rate": "0.02", "amount": "3.00"},
        {"bonus": "differential", "source_member_id": "C", "level": 2, "base": "300.00",
         "rate": "0.02", "amount": "6.00"},
        {"bonus": "matching", "source_member_id": "B", "level": 1, "base": "33.00",
         "rate": "0.10", "amount": "3.30"},
        {"bonus": "pool", "source_member_id": "A", "level": 0, "base": "5.50",
         "rate": "1.00", "amount": "5.50"},
    ]  # fmt: skip
    assert (statement["rank"], statement["bonus"], statement["earned"]) == (
        "Silver",
        "71.80",
        "98.30",
    )
    # The member's ledger lists the bonus lines too, without a sale.
    ledger = (
        await client.get(
            "/v1/members/C/commissions", params={"period": "2026-10"}, headers=program.headers
        )
    ).json()
    assert [(x["kind"], x["bonus"], x["sale_id"], x["amount"]) for x in ledger["items"]] == [
        ("personal", None, "O-1", "30.00"),
        ("bonus", "differential", None, "6.00"),
    ]

    # Where A and B stand in the closed October: the figures the close froze.
    a_october = await rank_of(client, program, "A", "2026-10")
    figures = ("status", "rank", "personal_volume", "organization_volume")
    assert {k: a_october[k] for k in figures} == {
        "status": "closed", "rank": "Silver", "personal_volume": "100.00",
        "organization_volume": "550.00",
    }  # fmt: skip
    assert a_october["legs"] == [
        {"member_id": "B", "volume": "450.00", "rank": "Bronze", "best_rank": "Bronze"}
    ]
    assert a_october["ranks"] == [
        {"name": "Bronze", "qualified": True, "requirements": [PV_100_OF("100.00")]},
        {"name": "Silver", "qualified": True, "requirements": [
            PV_100_OF("100.00"),
            {"requirement": "min_organization_volume", "required": "500.00", "actual": "550.00",
             "met": True},
        ]},
    ]  # fmt: skip
    assert a_october["next_rank"] is None
    b_october = await rank_of(client, program, "B", "2026-10")
    assert (b_october["rank"], b_october["active_recruits"]) == ("Bronze", 1)
    assert b_october["next_rank"] == {
        "name": "Silver",
        "missing": [
            {"requirement": "min_organization_volume", "required": "500.00", "actual": "450.00",
             "met": False}
        ],
    }  # fmt: skip

    # November: only A sells, 600.00 (60.00 personal): PV = OV = 600, Silver again; B and
    # C hold no rank. Differential 4 % = 24.00; B earned nothing, so no matching; pool
    # 1 % of 600.00 = 6.00; no advancement (A achieved Silver in October). Earned 90.00.
    await post_sale(client, program, "O-4", "A", "600.00", occurred_at="2026-11-02T00:00:00Z")
    # Before the close: what it would decide now. B and C sold nothing: no leg is shown.
    a_now = await rank_of(client, program, "A", "2026-11")
    assert (a_now["status"], a_now["rank"], a_now["rank_in_force"], a_now["legs"]) == (
        "open", "Silver", "Silver", []
    )  # fmt: skip
    assert (a_now["personal_volume"], a_now["organization_volume"]) == ("600.00", "600.00")
    c_now = await rank_of(client, program, "C", "2026-11")
    assert (c_now["rank"], c_now["rank_in_force"], c_now["achieved_rank"]) == (
        None,
        "Bronze",
        "Bronze",
    )
    assert c_now["next_rank"] == {
        "name": "Bronze",
        "missing": [
            {"requirement": "min_personal_volume", "required": "100.00", "actual": "0.00",
             "met": False}
        ],
    }  # fmt: skip
    november = await close(client, program, "2026-11")
    assert november["ranks"] == {"Silver": 1}
    assert november["totals"]["bonus"] == {
        "differential": "24.00",
        "matching": "0.00",
        "pool": "6.00",
        "advancement": "0.00",
    }
    assert november["totals"]["earned"] == "90.00"
    assert await bonus_lines(sessions, program, "2026-11") == [
        ("differential", "A", "A", 0, "0.04", "600.00", "24.00"),
        ("pool", "A", "A", 0, "1", "6.00", "6.00"),
    ]
    # B and C had no volume: no rank row, and no rank in force; what they achieved stays.
    assert await rows(
        sessions,
        "SELECT member_id, rank FROM period_ranks WHERE program_id = :p AND period = '2026-11'",
        p=program.id,
    ) == [("A", "Silver")]
    assert await member_ranks(sessions, program) == {
        "A": ("Silver", "Silver"),
        "B": (None, "Bronze"),
        "C": (None, "Bronze"),
    }
    history = (await client.get("/v1/members/B/ranks", headers=program.headers)).json()
    assert history == {
        "member_id": "B",
        "items": [{"period": "2026-11", "rank": None}, {"period": "2026-10", "rank": "Bronze"}],
    }
    member = (await client.get("/v1/members/B", headers=program.headers)).json()
    assert (member["rank"], member["achieved_rank"]) == (None, "Bronze")
    # A second close answers the first and writes nothing more.
    assert await close(client, program, "2026-11") == november
    assert len(await bonus_lines(sessions, program, "2026-11")) == 2


GATED_PLAN: dict[str, Any] = {
    "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}},
    "ranks": [
        {"name": "Bronze", "min_personal_volume": "100.00", "unlocked_levels": 1},
        {
            "name": "Silver",
            "min_personal_volume": "100.00",
            "min_organization_volume": "500.00",
            "unlocked_levels": 2,
        },
    ],
    "unranked_levels": 0,
}


async def levels_of(client: httpx.AsyncClient, program: Program, sale_id: str) -> list[Any]:
    sale = (await client.get(f"/v1/sales/{sale_id}", headers=program.headers)).json()
    return [(x["member_id"], x["paid_level"], x["amount"], x["reason"]) for x in sale["levels"]]


async def test_overrides_pay_only_the_levels_the_rank_in_force_unlocks(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], program: Program
) -> None:
    await store_plan(client, program, GATED_PLAN)
    await enroll_chain(client, program, "A", "B", "C")
    # October, before any close: nobody has a rank in force, and unranked members unlock
    # no level. C sells 400.00: C's 40.00 personal only; B (level 1) and A (level 2) hold
    # their levels but are not paid (rank_depth). B sells 100.00: B 10.00; A not paid.
    await post_sale(client, program, "O-1", "C", "400.00", occurred_at=OCTOBER)
    await post_sale(client, program, "O-2", "B", "100.00", occurred_at=OCTOBER)
    assert await levels_of(client, program, "O-1") == [
        ("B", 1, None, "rank_depth"),
        ("A", 2, None, "rank_depth"),
    ]
    assert await levels_of(client, program, "O-2") == [("A", 1, None, "rank_depth")]
    # The close: PV A 0, B 100, C 400; OV C 400, B 500. C is Bronze (unlocks 1 level), B is
    # Silver (2 levels), A (no PV) holds no rank.
    october = await close(client, program, "2026-10")
    assert october["ranks"] == {"Bronze": 1, "Silver": 1}
    assert october["totals"]["override"] == "0.00"
    # November: C sells 100.00: C 10.00; B, Silver in force, earns level 1's 5 % = 5.00; A,
    # unranked, holds level 2 and is not paid.
    await post_sale(client, program, "O-3", "C", "100.00", occurred_at="2026-11-02T00:00:00Z")
    assert await levels_of(client, program, "O-3") == [
        ("B", 1, "5.00", None),
        ("A", 2, None, "rank_depth"),
    ]
    sale = (await client.get("/v1/sales/O-3", headers=program.headers)).json()
    assert [(x["earner_id"], x["kind"], x["amount"]) for x in sale["lines"]] == [
        ("C", "personal", "10.00"),
        ("B", "override", "5.00"),
    ]


async def test_under_dynamic_compression_a_rank_short_member_still_holds_its_level(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    program = await make_program(sessions, "dynamic")
    await store_plan(client, program, {**GATED_PLAN, "compression": "dynamic"})
    await enroll_chain(client, program, "A", "B", "X", "C")
    inactive = await client.patch(
        "/v1/members/X", json={"status": "inactive"}, headers=program.headers
    )
    assert inactive.status_code == 200, inactive.text
    # October: C sells 400.00 and B 100.00; nobody has a rank in force yet. The close: PV
    # C 400, X 0, B 100, A 0; OV C 400, X 400, B 500, A 500: C Bronze, B Silver, X (inactive)
    # and A (no PV) nothing.
    await post_sale(client, program, "O-1", "C", "400.00", occurred_at=OCTOBER)
    await post_sale(client, program, "O-2", "B", "100.00", occurred_at=OCTOBER)
    assert (await close(client, program, "2026-10"))["ranks"] == {"Bronze": 1, "Silver": 1}
    # November: C sells 100.00. X is inactive and passed over: B takes level 1 (Silver
    # unlocks 2): 5 % = 5.00. A takes level 2 but, unranked, unlocks none: held, not paid,
    # and nobody above A is reached for it.
    await post_sale(client, program, "O-3", "C", "100.00", occurred_at="2026-11-02T00:00:00Z")
    assert await levels_of(client, program, "O-3") == [
        ("X", None, None, "inactive"),
        ("B", 1, "5.00", None),
        ("A", 2, None, "rank_depth"),
    ]


async def test_a_plan_with_ranks_is_answered_in_its_canonical_form(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await client.put(
        "/v1/plan",
        json={"effective_from": "2026-01-01T00:00:00Z", **RANKED_PLAN},
        headers=program.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ranks"] == [
        {"name": "Bronze", "min_personal_volume": "100.00", "differential_rate": "0.02"},
        {"name": "Silver", "min_personal_volume": "100.00", "min_organization_volume": "500.00",
         "differential_rate": "0.04", "matching_rates": ["0.10"], "pool_shares": 1,
         "advancement_bonus": "50.00"},
    ]  # fmt: skip
    assert (body["leadership_pool"], body["unranked_levels"]) == ({"rate": "0.01"}, None)
    # The same rules again are the same version; a rule between ranks is named.
    again = await client.put(
        "/v1/plan",
        json={"effective_from": "2026-01-01T00:00:00Z", **RANKED_PLAN},
        headers=program.headers,
    )
    assert (again.status_code, again.json()["version"]) == (200, body["version"])
    bad = copy.deepcopy(RANKED_PLAN)
    bad["ranks"][1]["differential_rate"] = "0.01"
    refused = await client.put(
        "/v1/plan", json={"effective_from": "2026-02-01T00:00:00Z", **bad}, headers=program.headers
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_plan"
    assert [e["loc"] for e in refused.json()["errors"]] == [
        ["body", "ranks", "1", "differential_rate"]
    ]
