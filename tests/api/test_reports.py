"""Reports through HTTP: per-level earnings, the ledger, and team statistics, worked by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from service.api.pagination import encode_cursor
from tests.api.flows import (
    cursor_key,
    enroll,
    enroll_chain,
    insert_tree,
    post_sale,
    put_plan,
    refund,
)
from tests.conftest import Program, make_key, make_program

PRODUCT = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}
REPORTS = ("overrides", "commissions", "downline/stats")


async def enroll_at(
    client: httpx.AsyncClient,
    program: Program,
    member_id: str,
    sponsor_id: str | None,
    enrolled_at: str,
) -> None:
    response = await client.post(
        "/v1/members",
        json={"id": member_id, "sponsor_id": sponsor_id, "enrolled_at": enrolled_at},
        headers=program.headers,
    )
    assert response.status_code == 201, response.text


async def set_status(
    client: httpx.AsyncClient, program: Program, member_id: str, status: str
) -> None:
    response = await client.patch(
        f"/v1/members/{member_id}", json={"status": status}, headers=program.headers
    )
    assert response.status_code == 200, response.text


async def report(
    client: httpx.AsyncClient,
    program: Program,
    member_id: str,
    what: str,
    *,
    expect: int = 200,
    **params: str | int,
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/members/{member_id}/{what}", params=params, headers=program.headers
    )
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_lines(
    client: httpx.AsyncClient, program: Program, member_id: str, **params: str | int
) -> list[list[dict[str, Any]]]:
    """Every page of the member's commissions, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, "cursor": cursor} if cursor else params
        response = await client.get(
            f"/v1/members/{member_id}/commissions", params=query, headers=program.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


# --- overrides ---------------------------------------------------------------------------


async def test_overrides_per_level_with_reversals_and_total(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    # M1 <- A <- A1, A2 ; M1 <- B <- B1
    await enroll(client, program, "M1", None)
    await enroll(client, program, "A", "M1")
    await enroll(client, program, "B", "M1")
    await enroll(client, program, "A1", "A")
    await enroll(client, program, "A2", "A")
    await enroll(client, program, "B1", "B")
    await post_sale(client, program, "M1-1", "M1", "120.00")  # personal 12.00
    await post_sale(client, program, "M1-2", "M1", "80.00")  # personal 8.00
    await post_sale(client, program, "A-1", "A", "100.00")  # M1 level 1: 5.00
    await post_sale(client, program, "A-2", "A", "50.00")  # M1 level 1: 2.50
    await post_sale(client, program, "B-1", "B", "200.00")  # M1 level 1: 10.00
    await post_sale(client, program, "A1-1", "A1", "100.00")  # M1 level 2: 3.00
    await post_sale(client, program, "A1-2", "A1", "60.00")  # M1 level 2: 1.80
    await post_sale(client, program, "A2-1", "A2", "40.00")  # M1 level 2: 1.20
    await post_sale(client, program, "B1-1", "B1", "200.00")  # M1 level 2: 6.00
    # 60.00 of B-1's 200.00 back: M1 gives back 10.00 x 60 / 200 = 3.00
    await refund(client, program, "B-1", "R-1", "60.00")

    body = await report(client, program, "M1", "overrides", period="2026-11")
    # level 1: A, B, B-1; 100 + 50 + 200 = 350.00; 5.00 + 2.50 + 10.00 = 17.50
    # level 2: A1, A2, B1; 4 sales; 100 + 60 + 40 + 200 = 400.00; 3.00 + 1.80 + 1.20 + 6.00
    # total: 20.00 + 17.50 + 12.00 - 3.00 = 46.50
    assert body == {
        "member_id": "M1",
        "period": "2026-11",
        "currency": "USD",
        "personal": {"volume": "200.00", "amount": "20.00"},
        "levels": [
            {
                "level": 1,
                "rate": "0.05",
                "members": 2,
                "sales": 3,
                "volume": "350.00",
                "amount": "17.50",
            },
            {
                "level": 2,
                "rate": "0.03",
                "members": 3,
                "sales": 4,
                "volume": "400.00",
                "amount": "12.00",
            },
        ],
        "reversals": "-3.00",
        "total": "46.50",
    }

    body = await report(client, program, "A", "overrides", period="2026-11")
    # A: personal 100 + 50 = 150.00 -> 15.00; level 1: A1 (100, 60), A2 (40) -> 200.00 x 5%
    assert body == {
        "member_id": "A",
        "period": "2026-11",
        "currency": "USD",
        "personal": {"volume": "150.00", "amount": "15.00"},
        "levels": [
            {
                "level": 1,
                "rate": "0.05",
                "members": 2,
                "sales": 3,
                "volume": "200.00",
                "amount": "10.00",
            }
        ],
        "reversals": "0.00",
        "total": "25.00",
    }


async def test_overrides_rate_is_null_where_a_level_was_paid_at_two_rates(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await put_plan(
        client,
        program,
        effective_from="2026-11-15T00:00:00Z",
        categories={"product": {"personal_rate": "0.10", "level_rates": ["0.04", "0.03"]}},
    )
    await enroll_chain(client, program, "M1", "S", "T")
    await post_sale(client, program, "S-1", "S", "100.00", occurred_at="2026-11-03T10:00:00Z")
    await post_sale(client, program, "S-2", "S", "100.00", occurred_at="2026-11-20T10:00:00Z")
    await post_sale(client, program, "T-1", "T", "50.00", occurred_at="2026-11-03T10:00:00Z")
    await post_sale(client, program, "T-2", "T", "100.00", occurred_at="2026-11-20T10:00:00Z")

    body = await report(client, program, "M1", "overrides", period="2026-11")
    # level 1: S-1 under version 1 at 5% = 5.00, S-2 under version 2 at 4% = 4.00 -> null rate
    # level 2: 3% in both versions: 50 x 3% = 1.50, 100 x 3% = 3.00
    # total 9.00 + 4.50 = 13.50
    assert body == {
        "member_id": "M1",
        "period": "2026-11",
        "currency": "USD",
        "personal": {"volume": "0.00", "amount": "0.00"},
        "levels": [
            {
                "level": 1,
                "rate": None,
                "members": 1,
                "sales": 2,
                "volume": "200.00",
                "amount": "9.00",
            },
            {
                "level": 2,
                "rate": "0.03",
                "members": 1,
                "sales": 2,
                "volume": "150.00",
                "amount": "4.50",
            },
        ],
        "reversals": "0.00",
        "total": "13.50",
    }


async def test_overrides_keep_to_the_period_in_the_programs_timezone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    nyc = await make_program(sessions, "nyc", timezone="America/New_York")
    await put_plan(client, nyc, categories=PRODUCT)
    await enroll_chain(client, nyc, "M1", "S")
    # 2026-11-01T03:00Z is Oct 31, 23:00 in New York (EDT, UTC-4): period 2026-10.
    await post_sale(client, nyc, "S-1", "S", "100.00", occurred_at="2026-11-01T03:00:00Z")
    # 05:00Z is Nov 1, 01:00 EDT; Dec 1, 04:59:59Z is Nov 30, 23:59:59 EST: both 2026-11.
    await post_sale(client, nyc, "S-2", "S", "40.00", occurred_at="2026-11-01T05:00:00Z")
    await post_sale(client, nyc, "S-3", "S", "20.00", occurred_at="2026-12-01T04:59:59Z")

    october = await report(client, nyc, "M1", "overrides", period="2026-10")
    assert october["levels"] == [
        {"level": 1, "rate": "0.05", "members": 1, "sales": 1, "volume": "100.00", "amount": "5.00"}
    ]
    assert october["total"] == "5.00"
    november = await report(client, nyc, "M1", "overrides", period="2026-11")
    # 40.00 + 20.00 = 60.00 at 5% = 3.00
    assert november["levels"] == [
        {"level": 1, "rate": "0.05", "members": 1, "sales": 2, "volume": "60.00", "amount": "3.00"}
    ]
    assert november["total"] == "3.00"
    assert (await report(client, nyc, "S", "overrides", period="2026-11"))["personal"] == {
        "volume": "60.00",
        "amount": "6.00",
    }


async def test_overrides_of_a_period_without_lines_are_zero(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "M1", "S")
    await post_sale(client, program, "S-1", "S", "100.00", occurred_at="2026-10-15T00:00:00Z")
    assert await report(client, program, "M1", "overrides", period="2026-11") == {
        "member_id": "M1",
        "period": "2026-11",
        "currency": "USD",
        "personal": {"volume": "0.00", "amount": "0.00"},
        "levels": [],
        "reversals": "0.00",
        "total": "0.00",
    }


# --- refusals shared by the three reports -------------------------------------------------


@pytest.mark.parametrize("what", REPORTS)
@pytest.mark.parametrize("period", ["2026-13", "2026-1", "abc", "", "2026-00", "1969-12"])
async def test_invalid_period_is_422(
    client: httpx.AsyncClient, program: Program, what: str, period: str
) -> None:
    await enroll(client, program, "M1", None)
    body = await report(client, program, "M1", what, expect=422, period=period)
    assert body["code"] == "invalid_period"


@pytest.mark.parametrize("what", ["overrides", "downline/stats"])
async def test_missing_period_is_422(
    client: httpx.AsyncClient, program: Program, what: str
) -> None:
    await enroll(client, program, "M1", None)
    body = await report(client, program, "M1", what, expect=422)
    assert body["code"] == "validation_error"


@pytest.mark.parametrize("what", REPORTS)
async def test_unknown_member_and_another_programs_member_are_404(
    client: httpx.AsyncClient,
    program: Program,
    sessions: async_sessionmaker[AsyncSession],
    what: str,
) -> None:
    other = await make_program(sessions, "globex")
    await put_plan(client, other, categories=PRODUCT)
    await enroll_chain(client, other, "M1", "S")
    await post_sale(client, other, "S-1", "S", "100.00")
    for member_id in ("GHOST", "M1"):
        body = await report(client, program, member_id, what, expect=404, period="2026-11")
        assert body["code"] == "member_not_found"


async def test_reports_need_the_read_scope(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await enroll(client, program, "M1", None)
    reader = await make_key(sessions, program.id, "read")
    writer = await make_key(sessions, program.id, "events:write")
    for what in REPORTS:
        url = f"/v1/members/M1/{what}"
        params = {"period": "2026-11"}
        assert (await client.get(url, params=params, headers=reader)).status_code == 200
        response = await client.get(url, params=params, headers=writer)
        assert response.status_code == 403
        assert response.json()["code"] == "insufficient_scope"


# --- commissions --------------------------------------------------------------------------


async def test_commissions_list_the_members_lines(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "R", "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    await refund(client, program, "O-1", "R-1", "30.00")
    body = await report(client, program, "R", "commissions")
    assert body["next_cursor"] is None
    items = body["items"]
    assert items[0]["id"] < items[1]["id"]
    for item in items:
        assert datetime.fromisoformat(item.pop("created_at")).tzinfo is not None
        del item["id"]
    # R is S's sponsor: 100.00 x 5% = 5.00; the refund of 30% takes back 1.50.
    assert items == [
        {
            "sale_id": "O-1",
            "refund_id": None,
            "source_member_id": "S",
            "kind": "override",
            "bonus": None,
            "level": 1,
            "paid_level": 1,
            "rate": "0.05",
            "base": "100.00",
            "amount": "5.00",
            "period": "2026-11",
            "plan_version": 1,
        },
        {
            "sale_id": "O-1",
            "refund_id": "R-1",
            "source_member_id": "S",
            "kind": "reversal",
            "bonus": None,
            "level": 1,
            "paid_level": 1,
            "rate": "0.05",
            "base": "-30.00",
            "amount": "-1.50",
            "period": "2026-11",
            "plan_version": 1,
        },
    ]
    assert await report(client, program, "R", "commissions", period="2026-10") == {
        "items": [],
        "next_cursor": None,
    }


async def _twenty_five_sales(client: httpx.AsyncClient, program: Program) -> list[str]:
    """S sells 25 times: every fifth sale in October, the others in November. Returns the
    sale ids in the order their lines were written."""
    await put_plan(client, program, categories=PRODUCT)
    await enroll_chain(client, program, "R", "S")
    sale_ids = [f"O-{i:02d}" for i in range(25)]
    for i, sale_id in enumerate(sale_ids):
        month = "10" if i % 5 == 0 else "11"
        await post_sale(
            client,
            program,
            sale_id,
            "S",
            "10.00",
            occurred_at=f"2026-{month}-{i + 1:02d}T12:00:00Z",
        )
    return sale_ids


async def test_commissions_page_through_every_line_once_in_order(
    client: httpx.AsyncClient, program: Program
) -> None:
    sale_ids = await _twenty_five_sales(client, program)
    pages = await all_lines(client, program, "S", limit=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    lines = [line for page in pages for line in page]
    assert [line["sale_id"] for line in lines] == sale_ids
    ids = [line["id"] for line in lines]
    assert ids == sorted(set(ids))
    assert {(line["kind"], line["amount"]) for line in lines} == {("personal", "1.00")}


async def test_commissions_period_filter(client: httpx.AsyncClient, program: Program) -> None:
    sale_ids = await _twenty_five_sales(client, program)
    october = await all_lines(client, program, "S", period="2026-10", limit=10)
    assert [[line["sale_id"] for line in page] for page in october] == [sale_ids[::5]]
    november = await all_lines(client, program, "S", period="2026-11", limit=10)
    # 20 lines: two full pages, the second without a next cursor
    assert [len(page) for page in november] == [10, 10]
    assert [line["sale_id"] for page in november for line in page] == [
        s for i, s in enumerate(sale_ids) if i % 5
    ]
    assert {line["period"] for page in november for line in page} == {"2026-11"}


async def test_commissions_cursor_is_bound_to_member_and_period(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    await _twenty_five_sales(client, program)
    unfiltered = (await report(client, program, "S", "commissions", limit=10))["next_cursor"]
    november = (await report(client, program, "S", "commissions", limit=10, period="2026-11"))[
        "next_cursor"
    ]
    downline = encode_cursor(await cursor_key(connection, program), "downline", "S", 1, "X")
    assert unfiltered
    assert november
    refused: list[tuple[str, dict[str, str | int]]] = [
        ("R", {"cursor": unfiltered}),
        ("S", {"cursor": unfiltered, "period": "2026-11"}),
        ("S", {"cursor": november}),
        ("S", {"cursor": november, "period": "2026-10"}),
        ("R", {"cursor": november, "period": "2026-11"}),
        ("R", {"cursor": downline}),
        ("S", {"cursor": "not-a-cursor"}),
    ]
    for member_id, params in refused:
        body = await report(client, program, member_id, "commissions", expect=422, **params)
        assert body["code"] == "invalid_cursor", (member_id, params)


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_commissions_limit_out_of_bounds_is_422(
    client: httpx.AsyncClient, program: Program, limit: int
) -> None:
    await enroll(client, program, "S", None)
    body = await report(client, program, "S", "commissions", expect=422, limit=limit)
    assert body["code"] == "validation_error"


# --- downline stats -----------------------------------------------------------------------


async def _small_team(client: httpx.AsyncClient, program: Program) -> None:
    """T <- R <- A <- A1 ; A <- A2 <- A21 ; R <- B, with sales in October to December."""
    await put_plan(client, program, categories=PRODUCT)
    await enroll_at(client, program, "T", None, "2026-01-01T00:00:00Z")
    await enroll_at(client, program, "R", "T", "2026-01-01T00:00:00Z")
    await enroll_at(client, program, "A", "R", "2026-10-15T12:00:00Z")
    await enroll_at(client, program, "B", "R", "2026-11-01T00:00:00Z")  # the first instant
    await enroll_at(client, program, "A1", "A", "2026-11-02T09:00:00Z")
    await enroll_at(client, program, "A2", "A", "2026-11-30T23:59:59Z")  # the last second
    await enroll_at(client, program, "A21", "A2", "2026-12-01T00:00:00Z")  # December's first
    await post_sale(client, program, "T-NOV", "T", "999.00", occurred_at="2026-11-10T00:00:00Z")
    await post_sale(client, program, "R-OCT", "R", "70.00", occurred_at="2026-10-10T00:00:00Z")
    await post_sale(client, program, "R-NOV", "R", "150.00", occurred_at="2026-11-10T00:00:00Z")
    await post_sale(client, program, "A-OCT", "A", "200.00", occurred_at="2026-10-20T00:00:00Z")
    # refunded in November: it leaves A's November volume, October keeps the 200.00
    await refund(client, program, "A-OCT", "RF-1", "60.00", occurred_at="2026-11-05T00:00:00Z")
    await post_sale(
        client,
        program,
        "A-NOV",
        "A",
        "100.00",
        volume="80.00",
        occurred_at="2026-11-12T00:00:00Z",
    )
    await post_sale(
        client,
        program,
        "A1-SUB",
        "A1",
        "50.00",
        subscription_id="SUB-1",
        occurred_at="2026-11-15T00:00:00Z",
    )
    # 10.00 of the subscription refunded in December: -10.00 volume and residual there
    await refund(client, program, "A1-SUB", "RF-2", "10.00", occurred_at="2026-12-03T00:00:00Z")
    await post_sale(client, program, "B-NOV", "B", "40.00", occurred_at="2026-11-10T00:00:00Z")
    await post_sale(client, program, "A21-DEC", "A21", "30.00", occurred_at="2026-12-02T00:00:00Z")
    await set_status(client, program, "A2", "inactive")
    await set_status(client, program, "B", "terminated")


async def test_downline_stats_of_a_small_team(client: httpx.AsyncClient, program: Program) -> None:
    await _small_team(client, program)
    # Level 1: A (active), B (terminated); level 2: A1 (active), A2 (inactive); level 3: A21.
    # November: A 80.00 - 60.00 refunded = 20.00, B 40.00 -> level 1 60.00;
    # A1 50.00 (a subscription: residual), A2 nothing -> level 2 50.00; A21 nothing.
    # New in November: B (Nov 1, 00:00:00), A1, A2 (Nov 30, 23:59:59); not A21 (Dec 1).
    # T, above R, is not in R's team.
    assert await report(client, program, "R", "downline/stats", period="2026-11") == {
        "member_id": "R",
        "period": "2026-11",
        "total_members": 5,
        "active_members": 3,
        "max_depth": 3,
        "new_members": 3,
        "personal_volume": "150.00",
        "group_volume": "110.00",
        "residual_volume": "50.00",
        "levels": [
            {"level": 1, "members": 2, "active": 1, "new": 1, "volume": "60.00"},
            {"level": 2, "members": 2, "active": 1, "new": 2, "volume": "50.00"},
            {"level": 3, "members": 1, "active": 1, "new": 0, "volume": "0.00"},
        ],
    }
    # October: the team as it stands now, with October's volumes: A's 200.00 whole (the
    # refund took it back in November); only A is new.
    assert await report(client, program, "R", "downline/stats", period="2026-10") == {
        "member_id": "R",
        "period": "2026-10",
        "total_members": 5,
        "active_members": 3,
        "max_depth": 3,
        "new_members": 1,
        "personal_volume": "70.00",
        "group_volume": "200.00",
        "residual_volume": "0.00",
        "levels": [
            {"level": 1, "members": 2, "active": 1, "new": 1, "volume": "200.00"},
            {"level": 2, "members": 2, "active": 1, "new": 0, "volume": "0.00"},
            {"level": 3, "members": 1, "active": 1, "new": 0, "volume": "0.00"},
        ],
    }
    # December: A1's refund -10.00 (residual too), A21 30.00 -> group 20.00; A21 is new.
    assert await report(client, program, "R", "downline/stats", period="2026-12") == {
        "member_id": "R",
        "period": "2026-12",
        "total_members": 5,
        "active_members": 3,
        "max_depth": 3,
        "new_members": 1,
        "personal_volume": "0.00",
        "group_volume": "20.00",
        "residual_volume": "-10.00",
        "levels": [
            {"level": 1, "members": 2, "active": 1, "new": 0, "volume": "0.00"},
            {"level": 2, "members": 2, "active": 1, "new": 0, "volume": "-10.00"},
            {"level": 3, "members": 1, "active": 1, "new": 1, "volume": "30.00"},
        ],
    }
    # A's team is A1 and A2 (A21 below A2); A's own November volume is 20.00.
    stats = await report(client, program, "A", "downline/stats", period="2026-11")
    assert (stats["total_members"], stats["max_depth"], stats["personal_volume"]) == (
        3,
        2,
        "20.00",
    )
    assert (stats["group_volume"], stats["residual_volume"]) == ("50.00", "50.00")


async def test_downline_stats_of_a_leaf_are_zero(
    client: httpx.AsyncClient, program: Program
) -> None:
    await _small_team(client, program)
    assert await report(client, program, "A21", "downline/stats", period="2026-11") == {
        "member_id": "A21",
        "period": "2026-11",
        "total_members": 0,
        "active_members": 0,
        "max_depth": 0,
        "new_members": 0,
        "personal_volume": "0.00",
        "group_volume": "0.00",
        "residual_volume": "0.00",
        "levels": [],
    }
    december = await report(client, program, "A21", "downline/stats", period="2026-12")
    assert (december["personal_volume"], december["levels"]) == ("30.00", [])


async def test_downline_stats_new_members_in_the_programs_timezone(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    nyc = await make_program(sessions, "nyc", timezone="America/New_York")
    await enroll_at(client, nyc, "R", None, "2026-01-01T00:00:00Z")
    # Oct 31, 23:00 in New York (EDT) and Nov 1, 00:00 EDT
    await enroll_at(client, nyc, "OCT", "R", "2026-11-01T03:00:00Z")
    await enroll_at(client, nyc, "NOV", "R", "2026-11-01T04:00:00Z")
    october = await report(client, nyc, "R", "downline/stats", period="2026-10")
    november = await report(client, nyc, "R", "downline/stats", period="2026-11")
    assert (october["new_members"], november["new_members"]) == (1, 1)
    assert october["levels"] == [
        {"level": 1, "members": 2, "active": 2, "new": 1, "volume": "0.00"}
    ]


@pytest.mark.parametrize(
    ("currency", "amount", "refunded", "net", "nothing"),
    [("JPY", "1500", "1501", "-1", "0"), ("KWD", "1.250", "1.251", "-0.001", "0.000")],
)
async def test_downline_stats_volumes_in_the_currencys_digits(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    currency: str,
    amount: str,
    refunded: str,
    net: str,
    nothing: str,
) -> None:
    # R <- A <- A1. November: A sells `amount`, A1 `refunded` (one minor unit more). December:
    # both are refunded whole and A1 sells `amount` again: level 2 nets to minus one unit.
    p = await make_program(sessions, currency.lower(), currency=currency)
    await put_plan(client, p, categories=PRODUCT)
    await enroll_at(client, p, "R", None, "2026-01-01T00:00:00Z")
    await enroll_at(client, p, "A", "R", "2026-01-01T00:00:00Z")
    await enroll_at(client, p, "A1", "A", "2026-01-01T00:00:00Z")
    await post_sale(client, p, "S-A", "A", amount, occurred_at="2026-11-10T00:00:00Z")
    await post_sale(client, p, "S-A1", "A1", refunded, occurred_at="2026-11-10T00:00:00Z")
    await refund(client, p, "S-A", "RF-A", amount, occurred_at="2026-12-01T00:00:00Z")
    await refund(client, p, "S-A1", "RF-A1", refunded, occurred_at="2026-12-01T00:00:00Z")
    await post_sale(client, p, "S-A1-DEC", "A1", amount, occurred_at="2026-12-02T00:00:00Z")
    november = await report(client, p, "R", "downline/stats", period="2026-11")
    assert (november["personal_volume"], november["levels"]) == (
        nothing,
        [
            {"level": 1, "members": 1, "active": 1, "new": 0, "volume": amount},
            {"level": 2, "members": 1, "active": 1, "new": 0, "volume": refunded},
        ],
    )
    december = await report(client, p, "R", "downline/stats", period="2026-12")
    assert (december["group_volume"], december["levels"]) == (
        f"-{refunded}",
        [
            {"level": 1, "members": 1, "active": 1, "new": 0, "volume": f"-{amount}"},
            {"level": 2, "members": 1, "active": 1, "new": 0, "volume": net},
        ],
    )


async def test_downline_stats_of_a_thousand_deep_chain(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    # C0 <- C1 <- ... <- C999, every one enrolled on 2026-01-01 and active.
    await insert_tree(
        connection, program.id, [(f"C{i}", f"C{i - 1}" if i else None) for i in range(1000)]
    )
    stats = await report(client, program, "C0", "downline/stats", period="2026-01")
    assert stats == {
        "member_id": "C0",
        "period": "2026-01",
        "total_members": 999,
        "active_members": 999,
        "max_depth": 999,
        "new_members": 999,
        "personal_volume": "0.00",
        "group_volume": "0.00",
        "residual_volume": "0.00",
        "levels": [
            {"level": level, "members": 1, "active": 1, "new": 1, "volume": "0.00"}
            for level in range(1, 1000)
        ],
    }
    middle = await report(client, program, "C500", "downline/stats", period="2026-02")
    assert (middle["total_members"], middle["max_depth"], middle["new_members"]) == (499, 499, 0)
