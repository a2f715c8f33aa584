"""Sales pay their upline in the same transaction; worked scenarios with exact cents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from tests.api.flows import cursor_key, enroll, enroll_chain, paid, post_sale, put_plan, refund
from tests.conftest import Program, make_program

PRODUCT_4 = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03", "0.02", "0.01"]}}
PRODUCT_3 = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03", "0.02"]}}


async def test_four_level_chain_with_diminishing_rates(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_4)
    await enroll_chain(client, program, "A", "B", "C", "D", "E")
    body = await post_sale(client, program, "O-1", "E", "123.45")
    # personal E: 123.45 x 0.10 = 12.345  -> 12.34 (half-even: the 4 is even)
    # level 1 D:  123.45 x 0.05 = 6.1725  -> 6.17
    # level 2 C:  123.45 x 0.03 = 3.7035  -> 3.70
    # level 3 B:  123.45 x 0.02 = 2.469   -> 2.47
    # level 4 A:  123.45 x 0.01 = 1.2345  -> 1.23
    assert paid(body["lines"]) == [
        ("E", "personal", 0, 0, "0.10", "12.34"),
        ("D", "override", 1, 1, "0.05", "6.17"),
        ("C", "override", 2, 2, "0.03", "3.70"),
        ("B", "override", 3, 3, "0.02", "2.47"),
        ("A", "override", 4, 4, "0.01", "1.23"),
    ]
    assert all(line["base"] == "123.45" for line in body["lines"])
    assert body["sale"] == {
        "id": "O-1",
        "member_id": "E",
        "amount": "123.45",
        "currency": "USD",
        "volume": "123.45",
        "category": "product",
        "subscription_id": None,
        "customer": "retail",
        "occurred_at": "2026-11-03T10:00:00Z",
        "period": "2026-11",
        "refunded": "0.00",
        "plan_version": 1,
    }


async def test_volume_is_the_base_when_given(client: httpx.AsyncClient, program: Program) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "B")
    body = await post_sale(client, program, "O-1", "B", "100.00", volume="40.00")
    # commissions are paid on volume: 40 x 0.10 = 4.00 personal, 40 x 0.05 = 2.00 to A
    assert paid(body["lines"]) == [
        ("B", "personal", 0, 0, "0.10", "4.00"),
        ("A", "override", 1, 1, "0.05", "2.00"),
    ]
    assert body["sale"]["volume"] == "40.00"


async def _inactive_in_the_middle(
    client: httpx.AsyncClient, program: Program, compression: str
) -> dict[str, Any]:
    await put_plan(client, program, categories=PRODUCT_3, compression=compression)
    # R <- A <- B <- C <- S ; B is inactive; S sells 100.00
    await enroll_chain(client, program, "R", "A", "B", "C", "S")
    response = await client.patch(
        "/v1/members/B", json={"status": "inactive"}, headers=program.headers
    )
    assert response.status_code == 200
    return await post_sale(client, program, "O-1", "S", "100.00")


async def test_no_compression_does_not_pay_an_inactive_members_share(
    client: httpx.AsyncClient, program: Program
) -> None:
    body = await _inactive_in_the_middle(client, program, "none")
    # C level 1: 100 x 0.05 = 5.00; B (level 2, 3%) inactive: not paid, not rolled up;
    # A level 3: 100 x 0.02 = 2.00; R is level 4, beyond the plan's 3 levels.
    assert paid(body["lines"]) == [
        ("S", "personal", 0, 0, "0.10", "10.00"),
        ("C", "override", 1, 1, "0.05", "5.00"),
        ("A", "override", 3, 3, "0.02", "2.00"),
    ]
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert [
        (x["level"], x["member_id"], x["paid"], x["paid_level"], x["reason"])
        for x in detail["levels"]
    ] == [
        (1, "C", True, 1, None),
        (2, "B", False, None, "inactive"),
        (3, "A", True, 3, None),
        (4, "R", False, None, "beyond_depth"),
    ]


async def test_dynamic_compression_rolls_the_level_up(
    client: httpx.AsyncClient, program: Program
) -> None:
    body = await _inactive_in_the_middle(client, program, "dynamic")
    # C takes paid level 1 (5% = 5.00); B is skipped; A, two levels up, takes paid level 2
    # (3% = 3.00); R, at distance 4, takes paid level 3 (2% = 2.00).
    assert paid(body["lines"]) == [
        ("S", "personal", 0, 0, "0.10", "10.00"),
        ("C", "override", 1, 1, "0.05", "5.00"),
        ("A", "override", 3, 2, "0.03", "3.00"),
        ("R", "override", 4, 3, "0.02", "2.00"),
    ]
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert [
        (x["member_id"], x["paid"], x["paid_level"], x["rate"], x["amount"], x["reason"])
        for x in detail["levels"]
    ] == [
        ("C", True, 1, "0.05", "5.00", None),
        ("B", False, None, None, None, "inactive"),
        ("A", True, 2, "0.03", "3.00", None),
        ("R", True, 3, "0.02", "2.00", None),
    ]


async def test_dynamic_compression_walks_past_many_unqualified_members(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(
        client,
        program,
        categories={"product": {"personal_rate": "0", "level_rates": ["0.05", "0.03"]}},
        compression="dynamic",
    )
    chain = ["TOP", "Q2", *[f"U{i}" for i in range(30)], "Q1", "S"]
    await enroll_chain(client, program, *chain)
    for i in range(30):
        await client.patch(
            f"/v1/members/U{i}", json={"status": "inactive"}, headers=program.headers
        )
    body = await post_sale(client, program, "O-1", "S", "100.00")
    # Q1 (distance 1) takes level 1: 5.00; 30 inactive members are skipped; Q2 (distance 32)
    # takes level 2: 3.00. TOP, the next one, is beyond depth.
    assert paid(body["lines"]) == [
        ("Q1", "override", 1, 1, "0.05", "5.00"),
        ("Q2", "override", 32, 2, "0.03", "3.00"),
    ]
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert len(detail["levels"]) == 33
    assert detail["levels"][-1] == {
        "level": 33,
        "member_id": "TOP",
        "paid": False,
        "paid_level": None,
        "rate": None,
        "amount": None,
        "reason": "beyond_depth",
    }


async def test_terminated_members_never_earn(client: httpx.AsyncClient, program: Program) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "B", "S")
    await client.patch("/v1/members/B", json={"status": "terminated"}, headers=program.headers)
    await client.patch("/v1/members/S", json={"status": "terminated"}, headers=program.headers)
    body = await post_sale(client, program, "O-1", "S", "100.00")
    # S is terminated: no personal line; B terminated: not paid; A at level 2: 3% = 3.00
    assert paid(body["lines"]) == [("A", "override", 2, 2, "0.03", "3.00")]
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert detail["levels"][0]["reason"] == "terminated"


async def test_activity_rule_needs_personal_volume_in_the_window(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(
        client,
        program,
        categories=PRODUCT_3,
        activity={"min_personal_volume": "100.00", "window_days": 30},
    )
    await enroll_chain(client, program, "A", "B", "S")
    # B sold 60.00 on Oct 10 and 50.00 on Oct 20; A sold 150.00 on Sep 1 (outside the window).
    await post_sale(client, program, "B-1", "B", "60.00", occurred_at="2026-10-10T00:00:00Z")
    await post_sale(client, program, "B-2", "B", "50.00", occurred_at="2026-10-20T00:00:00Z")
    await post_sale(client, program, "A-1", "A", "150.00", occurred_at="2026-09-01T00:00:00Z")
    # Sale on Nov 3: the window is [Oct 4, Nov 3). B has 110.00 in it: qualified, 5% = 5.00.
    # A has 0.00 in it: below the activity volume, its 3% is not paid.
    body = await post_sale(
        client, program, "S-1", "S", "100.00", occurred_at="2026-11-03T00:00:00Z"
    )
    assert paid(body["lines"]) == [
        ("S", "personal", 0, 0, "0.10", "10.00"),
        ("B", "override", 1, 1, "0.05", "5.00"),
    ]
    detail = (await client.get("/v1/sales/S-1", headers=program.headers)).json()
    assert detail["levels"][1]["reason"] == "below_activity_volume"

    # A refund of 20.00 of B-2 on Nov 5 leaves B with 90.00 in the next window: not qualified.
    await refund(client, program, "B-2", "R-1", "20.00", occurred_at="2026-11-05T00:00:00Z")
    body = await post_sale(
        client, program, "S-2", "S", "100.00", occurred_at="2026-11-06T00:00:00Z"
    )
    assert paid(body["lines"]) == [("S", "personal", 0, 0, "0.10", "10.00")]


async def test_enrollment_fee_pays_recruitment_rates(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(
        client,
        program,
        categories={
            **PRODUCT_3,
            "enrollment_fee": {"personal_rate": "0", "level_rates": ["0.20", "0.05"]},
        },
    )
    await enroll_chain(client, program, "A", "B", "NEW")
    body = await post_sale(client, program, "FEE-1", "NEW", "49.99", category="enrollment_fee")
    # the recruiter B: 49.99 x 0.20 = 9.998 -> 10.00; A: 49.99 x 0.05 = 2.4995 -> 2.50
    assert paid(body["lines"]) == [
        ("B", "override", 1, 1, "0.20", "10.00"),
        ("A", "override", 2, 2, "0.05", "2.50"),
    ]


async def test_category_the_plan_does_not_name_pays_nothing(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    body = await post_sale(client, program, "O-1", "S", "100.00", category="gift_card")
    assert body["lines"] == []


async def test_partial_then_full_refund_nets_every_earner_to_zero(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "B", "C", "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    # Lines: S 10.00, C 5.00, B 3.00, A 2.00.
    first = await refund(client, program, "O-1", "R-1", "33.33")
    # 33.33 % back: S 10 x 0.3333 = 3.333 -> 3.33; C 1.6665 -> 1.67; B 0.9999 -> 1.00;
    # A 0.6666 -> 0.67
    assert paid(first["lines"]) == [
        ("S", "reversal", 0, 0, "0.10", "-3.33"),
        ("C", "reversal", 1, 1, "0.05", "-1.67"),
        ("B", "reversal", 2, 2, "0.03", "-1.00"),
        ("A", "reversal", 3, 3, "0.02", "-0.67"),
    ]
    assert first["refund"]["volume"] == "33.33"
    # The tree changes and a new plan comes in force: the reversal still follows the sale.
    await client.post("/v1/members/S/move", json={"sponsor_id": "A"}, headers=program.headers)
    await put_plan(
        client,
        program,
        effective_from="2026-11-10T00:00:00Z",
        categories={"product": {"personal_rate": "0.50", "level_rates": []}},
    )
    second = await refund(client, program, "O-1", "R-2", "66.67")
    # the rest: S 10.00 - 3.33 = 6.67, C 5.00 - 1.67 = 3.33, B 3.00 - 1.00 = 2.00,
    # A 2.00 - 0.67 = 1.33
    assert paid(second["lines"]) == [
        ("S", "reversal", 0, 0, "0.10", "-6.67"),
        ("C", "reversal", 1, 1, "0.05", "-3.33"),
        ("B", "reversal", 2, 2, "0.03", "-2.00"),
        ("A", "reversal", 3, 3, "0.02", "-1.33"),
    ]
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert detail["sale"]["refunded"] == "100.00"
    net: dict[str, Decimal] = {}
    for line in detail["lines"] + [x for r in detail["refunds"] for x in r["lines"]]:
        net[line["earner_id"]] = net.get(line["earner_id"], Decimal(0)) + Decimal(line["amount"])
    assert net == {"S": Decimal("0.00"), "C": 0, "B": 0, "A": 0}
    assert all(str(amount) == "0.00" for amount in net.values())
    assert [r["id"] for r in detail["refunds"]] == ["R-1", "R-2"]
    # Nothing is left to refund.
    response = await client.post(
        "/v1/sales/O-1/refunds",
        json={"id": "R-3", "amount": "0.01", "occurred_at": "2026-11-21T00:00:00Z"},
        headers=program.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "refund_exceeds_sale"


async def test_plan_change_between_two_sales(client: httpx.AsyncClient, program: Program) -> None:
    first = await put_plan(
        client,
        program,
        effective_from="2026-01-01T00:00:00Z",
        categories={"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}},
    )
    second = await put_plan(
        client,
        program,
        effective_from="2026-06-01T00:00:00Z",
        categories={"product": {"personal_rate": "0.20", "level_rates": ["0.10"]}},
    )
    assert (first["version"], second["version"]) == (1, 2)
    await enroll_chain(client, program, "A", "S")
    march = await post_sale(
        client, program, "O-3", "S", "50.00", occurred_at="2026-03-15T12:00:00Z"
    )
    july = await post_sale(client, program, "O-7", "S", "50.00", occurred_at="2026-07-15T12:00:00Z")
    # March is paid by version 1: 50 x 0.10 = 5.00, 50 x 0.05 = 2.50
    assert march["sale"]["plan_version"] == 1
    assert paid(march["lines"]) == [
        ("S", "personal", 0, 0, "0.10", "5.00"),
        ("A", "override", 1, 1, "0.05", "2.50"),
    ]
    # July by version 2: 50 x 0.20 = 10.00, 50 x 0.10 = 5.00
    assert july["sale"]["plan_version"] == 2
    assert paid(july["lines"]) == [
        ("S", "personal", 0, 0, "0.20", "10.00"),
        ("A", "override", 1, 1, "0.10", "5.00"),
    ]
    # A sale exactly at the change is paid by the new version.
    edge = await post_sale(client, program, "O-6", "S", "50.00", occurred_at="2026-06-01T00:00:00Z")
    assert edge["sale"]["plan_version"] == 2


async def test_payout_cap_with_rounding(client: httpx.AsyncClient, program: Program) -> None:
    await put_plan(
        client,
        program,
        categories={"product": {"personal_rate": "0.30", "level_rates": ["0.20", "0.20"]}},
        max_payout_ratio="0.50",
    )
    await enroll_chain(client, program, "A", "B", "S")
    body = await post_sale(client, program, "O-1", "S", "0.11")
    # Rates add up to 0.70 > cap 0.50: each is scaled by 0.5 / 0.7 and cut to 10 decimals:
    # 0.30 -> 0.2142857142, 0.20 -> 0.1428571428.
    # S: 0.11 x 0.2142857142 = 0.02357... -> 0.02; B, A: 0.11 x 0.1428571428 = 0.01571... -> 0.02
    # That is 0.06, above the cap 0.11 x 0.50 = 0.055 -> 0.05 (rounded down). One cent is
    # taken back from the line rounding favoured most (B and A gained 0.0043 each; the tie
    # goes to the deepest level): A gets 0.01.
    assert paid(body["lines"]) == [
        ("S", "personal", 0, 0, "0.2142857142", "0.02"),
        ("B", "override", 1, 1, "0.1428571428", "0.02"),
        ("A", "override", 2, 2, "0.1428571428", "0.01"),
    ]
    big = await post_sale(client, program, "O-2", "S", "1000.00")
    # 1000 x 0.2142857142 = 214.2857142 -> 214.29; 1000 x 0.1428571428 = 142.857 -> 142.86 (x2)
    # = 500.01 > cap 500.00: one cent back from the line rounding favoured most (S, +0.0043
    # vs +0.0029 for the others): S gets 214.28. Total exactly 500.00.
    assert [x["amount"] for x in big["lines"]] == ["214.28", "142.86", "142.86"]


async def test_same_sale_posted_again_answers_the_original(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    first = await post_sale(client, program, "O-1", "S", "100.00")
    again = await post_sale(client, program, "O-1", "S", "100.00", expect=200)
    assert again == first
    # Defaults written out are the same sale too.
    explicit = await post_sale(
        client,
        program,
        "O-1",
        "S",
        "100.00",
        expect=200,
        volume="100.00",
        category="product",
        customer="retail",
    )
    assert explicit == first
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert len(detail["lines"]) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"amount": "100.01"},
        {"member_id": "A"},
        {"occurred_at": "2026-11-03T10:00:01Z"},
        {"category": "enrollment_fee"},
        {"volume": "90.00"},
        {"subscription_id": "SUB-1"},
    ],
)
async def test_another_sale_under_the_same_id_is_409(
    client: httpx.AsyncClient, program: Program, change: dict[str, str]
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    body = {
        "id": "O-1",
        "member_id": "S",
        "amount": "100.00",
        "currency": "USD",
        "occurred_at": "2026-11-03T10:00:00Z",
        **change,
    }
    response = await client.post("/v1/sales", json=body, headers=program.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "sale_conflict"


async def test_sale_of_unknown_member_is_422_and_writes_nothing(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    response = await client.post(
        "/v1/sales",
        json={
            "id": "O-1",
            "member_id": "GHOST",
            "amount": "10.00",
            "currency": "USD",
            "occurred_at": "2026-11-03T10:00:00Z",
        },
        headers=program.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_member"
    assert (await client.get("/v1/sales/O-1", headers=program.headers)).status_code == 404
    # Once the member arrives, the retry succeeds.
    await enroll(client, program, "GHOST", None)
    await post_sale(client, program, "O-1", "GHOST", "10.00")


async def test_sale_with_no_plan_in_force_is_422(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from="2026-06-01T00:00:00Z", categories=PRODUCT_3)
    await enroll_chain(client, program, "S")
    response = await client.post(
        "/v1/sales",
        json={
            "id": "O-1",
            "member_id": "S",
            "amount": "10.00",
            "currency": "USD",
            "occurred_at": "2026-05-31T23:59:59Z",
        },
        headers=program.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "no_plan_in_force"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": 10.5}, "validation_error"),
        ({"amount": 10}, "validation_error"),
        ({"amount": "10.001"}, "invalid_amount"),
        ({"amount": "-5.00"}, "invalid_amount"),
        ({"amount": "0"}, "invalid_amount"),
        ({"amount": "1e3"}, "invalid_amount"),
        ({"amount": "NaN"}, "invalid_amount"),
        ({"amount": "12345678901234567.00"}, "invalid_amount"),
        ({"volume": 5.5}, "validation_error"),
        ({"volume": "-1.00"}, "invalid_amount"),
        ({"currency": "EUR"}, "currency_mismatch"),
        ({"currency": "usd"}, "validation_error"),
        ({"occurred_at": "2026-11-03T10:00:00"}, "validation_error"),
        ({"category": "Bad Category"}, "validation_error"),
        ({"customer": "wholesale"}, "validation_error"),
        ({"id": ""}, "validation_error"),
        ({"extra": 1}, "validation_error"),
    ],
)
async def test_invalid_sale_is_422_and_writes_nothing(
    client: httpx.AsyncClient, program: Program, change: dict[str, object], code: str
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "S")
    body = {
        "id": "O-1",
        "member_id": "S",
        "amount": "10.00",
        "currency": "USD",
        "occurred_at": "2026-11-03T10:00:00Z",
        **change,
    }
    response = await client.post("/v1/sales", json=body, headers=program.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert (await client.get("/v1/sales/O-1", headers=program.headers)).status_code == 404


async def test_jpy_and_kwd_minor_units(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    yen = await make_program(sessions, "yen", currency="JPY")
    await put_plan(client, yen, categories=PRODUCT_3)
    await enroll_chain(client, yen, "A", "S")
    body = await post_sale(client, yen, "O-1", "S", "1555")
    # 1555 x 0.10 = 155.5 -> 156 (half-even: 155 is odd); 1555 x 0.05 = 77.75 -> 78
    assert [x["amount"] for x in body["lines"]] == ["156", "78"]
    response = await client.post(
        "/v1/sales",
        json={
            "id": "O-2",
            "member_id": "S",
            "amount": "1.50",
            "currency": "JPY",
            "occurred_at": "2026-11-03T10:00:00Z",
        },
        headers=yen.headers,
    )
    assert response.json()["code"] == "invalid_amount"

    dinar = await make_program(sessions, "dinar", currency="KWD")
    await put_plan(client, dinar, categories=PRODUCT_3)
    await enroll_chain(client, dinar, "A", "S")
    body = await post_sale(client, dinar, "O-1", "S", "10.125")
    # 10.125 x 0.10 = 1.0125 -> 1.012 (half-even); 10.125 x 0.05 = 0.50625 -> 0.506
    assert [x["amount"] for x in body["lines"]] == ["1.012", "0.506"]
    assert body["sale"]["refunded"] == "0.000"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"id": "R-1", "amount": "100.01", "occurred_at": "2026-11-20T00:00:00Z"},
            422,
            "refund_exceeds_sale",
        ),
        (
            {"id": "R-1", "amount": "0.00", "occurred_at": "2026-11-20T00:00:00Z"},
            422,
            "invalid_amount",
        ),
        (
            {"id": "R-1", "amount": 5.0, "occurred_at": "2026-11-20T00:00:00Z"},
            422,
            "validation_error",
        ),
        (
            {"id": "R-1", "amount": "5.00", "occurred_at": "2026-11-01T00:00:00Z"},
            422,
            "refund_before_sale",
        ),
        ({"id": "R-1", "amount": "5.00"}, 422, "validation_error"),
    ],
)
async def test_invalid_refund_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, program: Program, body: dict[str, object], status: int, code: str
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    response = await client.post("/v1/sales/O-1/refunds", json=body, headers=program.headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert detail["refunds"] == []
    assert detail["sale"]["refunded"] == "0.00"


async def test_refund_of_unknown_sale_is_404(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.post(
        "/v1/sales/NOPE/refunds",
        json={"id": "R-1", "amount": "1.00", "occurred_at": "2026-11-20T00:00:00Z"},
        headers=program.headers,
    )
    assert response.status_code == 404
    assert response.json()["code"] == "sale_not_found"


async def test_refund_posted_again_answers_the_original_and_different_is_409(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    await post_sale(client, program, "O-2", "S", "100.00")
    first = await refund(client, program, "O-1", "R-1", "40.00")
    again = await refund(client, program, "O-1", "R-1", "40.00", expect=200)
    assert again == first
    response = await client.post(
        "/v1/sales/O-1/refunds",
        json={"id": "R-1", "amount": "41.00", "occurred_at": "2026-11-20T10:00:00Z"},
        headers=program.headers,
    )
    assert response.status_code == 409
    assert response.json()["code"] == "refund_conflict"
    # The same refund id on another sale is a different refund too.
    response = await client.post(
        "/v1/sales/O-2/refunds",
        json={"id": "R-1", "amount": "40.00", "occurred_at": "2026-11-20T10:00:00Z"},
        headers=program.headers,
    )
    assert response.status_code == 409
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert detail["sale"]["refunded"] == "40.00"


async def test_sales_of_another_program_are_404(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = await make_program(sessions, "globex")
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    assert (await client.get("/v1/sales/O-1", headers=other.headers)).status_code == 404
    response = await client.post(
        "/v1/sales/O-1/refunds",
        json={"id": "R-1", "amount": "1.00", "occurred_at": "2026-11-20T00:00:00Z"},
        headers=other.headers,
    )
    assert response.status_code == 404
    # and the other program's sales cannot credit this program's members
    await put_plan(client, other, categories=PRODUCT_3)
    response = await client.post(
        "/v1/sales",
        json={
            "id": "O-9",
            "member_id": "S",
            "amount": "1.00",
            "currency": "USD",
            "occurred_at": "2026-11-03T10:00:00Z",
        },
        headers=other.headers,
    )
    assert response.json()["code"] == "unknown_member"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/sales",
            {
                "id": "O-1",
                "member_id": "S",
                "amount": "1.00",
                "currency": "USD",
                "occurred_at": "0001-01-01T00:00:00Z",
            },
        ),
        (
            "/v1/sales",
            {
                "id": "O-1",
                "member_id": "S",
                "amount": "1.00",
                "currency": "USD",
                "occurred_at": "9999-12-31T23:59:59Z",
            },
        ),
        ("/v1/members", {"id": "M", "sponsor_id": None, "enrolled_at": "1969-12-31T23:59:59Z"}),
    ],
)
async def test_instants_outside_the_calendar_are_422(
    client: httpx.AsyncClient, program: Program, path: str, body: dict[str, str]
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "S")
    response = await client.post(path, json=body, headers=program.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_the_largest_sales_add_up_without_overflow(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    for i in range(3):
        await post_sale(client, program, f"O-{i}", "S", "999999999999999.99")
    stats = (
        await client.get("/v1/members/A/downline/stats?period=2026-11", headers=program.headers)
    ).json()
    # 3 x 999,999,999,999,999.99 = 2,999,999,999,999,999.97
    assert stats["group_volume"] == "2999999999999999.97"


@pytest.mark.parametrize("position", [10**30, -1, "1", 1.5])
async def test_signed_cursors_with_huge_numbers_are_422(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program, position: object
) -> None:
    from service.api.pagination import encode_cursor

    await enroll_chain(client, program, "A", "S")
    cursor = encode_cursor(await cursor_key(connection, program), "upline", "S", position, "A")
    response = await client.get(
        "/v1/members/S/upline", params={"cursor": cursor}, headers=program.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


async def test_the_database_refuses_to_delete_a_sale_or_rewrite_its_lines(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PRODUCT_3)
    await enroll_chain(client, program, "A", "S")
    await post_sale(client, program, "O-1", "S", "100.00")
    for statement, refusal in [
        ("DELETE FROM sales", "rows of sales are never deleted"),
        ("DELETE FROM commission_lines", "commission_lines is append-only"),
        ("UPDATE commission_lines SET amount = 0", "commission_lines is append-only"),
    ]:
        with pytest.raises(DBAPIError, match=refusal):
            async with connection.begin_nested():
                await connection.execute(text(statement))
    response = await client.get("/v1/sales/O-1", headers=program.headers)
    assert [line["amount"] for line in response.json()["lines"]] == ["10.00", "5.00"]


@pytest.mark.parametrize("compression", ["none", "dynamic"])
async def test_an_upline_member_enrolled_after_the_sale_is_skipped(
    client: httpx.AsyncClient, program: Program, compression: str
) -> None:
    await put_plan(client, program, categories=PRODUCT_3, compression=compression)
    # The sale occurred on Nov 3 and came in late: S and its sponsor B joined on Nov 5
    # (after the sale), A on Nov 3 at the sale's very instant, R before.
    for member, sponsor, at in [
        ("R", None, "2026-01-01T00:00:00Z"),
        ("A", "R", "2026-11-03T10:00:00Z"),
        ("B", "A", "2026-11-05T00:00:00Z"),
        ("S", "B", "2026-11-05T00:00:00Z"),
    ]:
        await enroll(client, program, member, sponsor, enrolled_at=at)
    body = await post_sale(client, program, "O-1", "S", "100.00")
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    levels = [(x["member_id"], x["paid_level"], x["amount"], x["reason"]) for x in detail["levels"]]
    if compression == "none":
        # B's level 1 (5.00) is not paid; A level 2: 3.00; R level 3: 2.00.
        assert paid(body["lines"]) == [
            ("S", "personal", 0, 0, "0.10", "10.00"),
            ("A", "override", 2, 2, "0.03", "3.00"),
            ("R", "override", 3, 3, "0.02", "2.00"),
        ]
        assert levels == [
            ("B", None, None, "not_yet_enrolled"),
            ("A", 2, "3.00", None),
            ("R", 3, "2.00", None),
        ]
    else:
        # B is skipped: A takes level 1 (5.00), R level 2 (3.00).
        assert paid(body["lines"]) == [
            ("S", "personal", 0, 0, "0.10", "10.00"),
            ("A", "override", 2, 1, "0.05", "5.00"),
            ("R", "override", 3, 2, "0.03", "3.00"),
        ]
        assert levels == [
            ("B", None, None, "not_yet_enrolled"),
            ("A", 1, "5.00", None),
            ("R", 2, "3.00", None),
        ]
