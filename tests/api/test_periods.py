"""Closing periods: statements with worked numbers, payout minimum and debts carried, closes
refused out of order or too early, dry runs, and two closes racing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from service.db import programs as program_sql
from service.services import periods
from tests.api.flows import insert_tree, post_sale, put_plan, refund
from tests.conftest import Program, make_program

PRODUCT = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}
SINCE = "2026-01-01T00:00:00Z"


async def enroll_chain(client: httpx.AsyncClient, program: Program, *ids: str) -> None:
    """ids[0] a root, each next one under the one before, all enrolled since January."""
    sponsor = None
    for member_id in ids:
        response = await client.post(
            "/v1/members",
            json={"id": member_id, "sponsor_id": sponsor, "enrolled_at": SINCE, "name": member_id},
            headers=program.headers,
        )
        assert response.status_code == 201, response.text
        sponsor = member_id


async def close(
    client: httpx.AsyncClient, program: Program, period: str, *, dry_run: bool = False
) -> httpx.Response:
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(f"/v1/periods/{period}/close", params=params, headers=program.headers)


async def closed(client: httpx.AsyncClient, program: Program, period: str) -> dict[str, Any]:
    response = await close(client, program, period)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def statements(
    client: httpx.AsyncClient, program: Program, period: str
) -> dict[str, tuple[str, str, str, str]]:
    """(earned, carried_in, payable, carried_out) of each member's statement."""
    response = await client.get(f"/v1/periods/{period}/statements", headers=program.headers)
    assert response.status_code == 200, response.text
    return {
        s["member_id"]: (s["earned"], s["carried_in"], s["payable"], s["carried_out"])
        for s in response.json()["items"]
    }


def money_totals(summary: dict[str, Any]) -> tuple[str, str, str, str]:
    totals = summary["totals"]
    return (
        totals["earned"],
        totals["carried_in"],
        totals["payable"],
        totals["carried_forward"],
    )


async def test_three_months_with_a_payout_minimum_carried_then_paid(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(
        client, program, effective_from=SINCE, categories=PRODUCT, payout={"minimum": "25.00"}
    )
    await enroll_chain(client, program, "A", "B")
    # August: B sells 100.00: B 10.00 personal, A 5.00 override. Both below 25.00: carried.
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z")
    august = await closed(client, program, "2026-08")
    assert august["status"] == "closed"
    assert august["closed_at"] is not None
    assert august["volume"] == "100.00"
    assert august["statements"] == 2
    assert money_totals(august) == ("15.00", "0.00", "0.00", "15.00")
    assert await statements(client, program, "2026-08") == {
        "A": ("5.00", "0.00", "0.00", "5.00"),
        "B": ("10.00", "0.00", "0.00", "10.00"),
    }
    # September: B sells 200.00: B 20.00, A 10.00. B: 10.00 + 20.00 = 30.00 >= 25.00, paid
    # whole; A: 5.00 + 10.00 = 15.00 < 25.00, carried again.
    await post_sale(client, program, "O-2", "B", "200.00", occurred_at="2026-09-10T00:00:00Z")
    september = await closed(client, program, "2026-09")
    assert money_totals(september) == ("30.00", "15.00", "30.00", "15.00")
    assert await statements(client, program, "2026-09") == {
        "A": ("10.00", "5.00", "0.00", "15.00"),
        "B": ("20.00", "10.00", "30.00", "0.00"),
    }
    # October: A sells 100.00 (10.00 personal): 15.00 + 10.00 = 25.00 reaches the minimum.
    # B earned nothing and carries nothing in: no statement.
    await post_sale(client, program, "O-3", "A", "100.00", occurred_at="2026-10-10T00:00:00Z")
    october = await closed(client, program, "2026-10")
    assert money_totals(october) == ("10.00", "15.00", "25.00", "0.00")
    assert await statements(client, program, "2026-10") == {
        "A": ("10.00", "15.00", "25.00", "0.00")
    }
    statement = (
        await client.get("/v1/members/A/statements/2026-10", headers=program.headers)
    ).json()
    assert statement == {
        "member_id": "A",
        "name": "A",
        "rank": None,
        "personal": "10.00",
        "override": "0.00",
        "reversal": "0.00",
        "bonus": "0.00",
        "earned": "10.00",
        "carried_in": "15.00",
        "payable": "25.00",
        "carried_out": "0.00",
        "period": "2026-10",
        "status": "closed",
        "currency": "USD",
        "bonus_lines": [],
        "levels": [{"level": 0, "earned": "10.00", "reversal": "0.00", "total": "10.00"}],
    }


async def test_a_refund_after_the_close_makes_a_debt_that_next_earnings_pay_off(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z")
    # No minimum: August pays B 10.00 and A 5.00 at once.
    august = await closed(client, program, "2026-08")
    assert money_totals(august) == ("15.00", "0.00", "15.00", "0.00")
    # September: the August sale is refunded whole (its reversal lines are booked in
    # September, August being closed: B -10.00, A -5.00) and B sells 50.00 (B 5.00, A 2.50).
    answer = await refund(
        client, program, "O-1", "R-1", "100.00", occurred_at="2026-09-05T00:00:00Z"
    )
    assert answer["refund"]["period"] == "2026-09"
    await post_sale(client, program, "O-2", "B", "50.00", occurred_at="2026-09-10T00:00:00Z")
    september = await closed(client, program, "2026-09")
    # B: -10.00 + 5.00 = -5.00, A: -5.00 + 2.50 = -2.50: nothing payable, debts carried.
    assert await statements(client, program, "2026-09") == {
        "A": ("-2.50", "0.00", "0.00", "-2.50"),
        "B": ("-5.00", "0.00", "0.00", "-5.00"),
    }
    assert money_totals(september) == ("-7.50", "0.00", "0.00", "-7.50")
    assert september["volume"] == "-50.00"  # 50.00 sold, 100.00 refunded
    b_september = (
        await client.get("/v1/members/B/statements/2026-09", headers=program.headers)
    ).json()
    assert (b_september["personal"], b_september["reversal"]) == ("5.00", "-10.00")
    # October: B sells 100.00 (B 10.00, A 5.00): the debts are paid off first.
    await post_sale(client, program, "O-3", "B", "100.00", occurred_at="2026-10-10T00:00:00Z")
    october = await closed(client, program, "2026-10")
    # B: -5.00 + 10.00 = 5.00 payable; A: -2.50 + 5.00 = 2.50 payable.
    assert await statements(client, program, "2026-10") == {
        "A": ("5.00", "-2.50", "2.50", "0.00"),
        "B": ("10.00", "-5.00", "5.00", "0.00"),
    }
    assert money_totals(october) == ("15.00", "-7.50", "7.50", "0.00")


async def test_a_sale_arriving_after_its_month_closed_is_paid_in_the_next(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z")
    await closed(client, program, "2026-08")
    late = await post_sale(client, program, "O-2", "B", "40.00", occurred_at="2026-08-31T23:00:00Z")
    assert late["sale"]["period"] == "2026-09"
    # August's statements are as closed; the late sale pays B 4.00 and A 2.00 in September.
    assert await statements(client, program, "2026-08") == {
        "A": ("5.00", "0.00", "5.00", "0.00"),
        "B": ("10.00", "0.00", "10.00", "0.00"),
    }
    september = await closed(client, program, "2026-09")
    assert money_totals(september) == ("6.00", "0.00", "6.00", "0.00")
    assert september["volume"] == "40.00"


async def test_closes_refused_before_the_month_ends_and_out_of_order(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z")
    await post_sale(client, program, "O-2", "B", "100.00", occurred_at="2026-10-10T00:00:00Z")
    # Not ended is checked first, though August is open with activity.
    early = await close(client, program, "2099-01")
    assert (early.status_code, early.json()["code"]) == (409, "period_not_ended")
    out_of_order = await close(client, program, "2026-10")
    assert (out_of_order.status_code, out_of_order.json()["code"]) == (409, "earlier_period_open")
    assert "2026-08" in out_of_order.json()["detail"]
    await closed(client, program, "2026-08")
    # September holds nothing: October may close without it, and then September is settled.
    await closed(client, program, "2026-10")
    settled = await close(client, program, "2026-09")
    assert (settled.status_code, settled.json()["code"]) == (409, "period_settled")
    invalid = await close(client, program, "2026-13")
    assert (invalid.status_code, invalid.json()["code"]) == (422, "invalid_period")
    reader = await client.post(
        "/v1/periods/2026-08/close",
        headers={"Authorization": "Bearer nope"},
    )
    assert reader.status_code == 401
    count = await connection.execute(
        text("SELECT count(*) FROM closed_periods WHERE program_id = :p"), {"p": program.id}
    )
    assert count.scalar_one() == 2


async def test_a_dry_run_answers_the_summary_and_writes_nothing(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z")
    dry = await close(client, program, "2026-08", dry_run=True)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["status"], body["closed_at"]) == ("open", None)
    assert money_totals(body) == ("15.00", "0.00", "15.00", "0.00")
    for table in ("closed_periods", "statements"):
        count = await connection.execute(
            text(f"SELECT count(*) FROM {table} WHERE program_id = :p"),  # noqa: S608
            {"p": program.id},
        )
        assert count.scalar_one() == 0
    period = (await client.get("/v1/periods/2026-08", headers=program.headers)).json()
    assert period["status"] == "open"
    real = await closed(client, program, "2026-08")
    assert {k: v for k, v in real.items() if k not in ("status", "closed_at")} == {
        k: v for k, v in body.items() if k not in ("status", "closed_at")
    }
    # Closing again answers the first close and changes nothing.
    assert await closed(client, program, "2026-08") == real
    assert (await close(client, program, "2026-08", dry_run=True)).json() == real


async def test_periods_list_newest_first_with_their_status(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    for sale_id, month in (("O-1", "08"), ("O-2", "09"), ("O-3", "11")):
        await post_sale(
            client, program, sale_id, "B", "100.00", occurred_at=f"2026-{month}-10T00:00:00Z"
        )
    await closed(client, program, "2026-08")
    first = (await client.get("/v1/periods?limit=2", headers=program.headers)).json()
    assert [(p["period"], p["status"]) for p in first["items"]] == [
        ("2026-11", "open"),
        ("2026-09", "open"),
    ]
    assert money_totals(first["items"][0]) == ("15.00", "0.00", "15.00", "0.00")
    rest = (
        await client.get(
            "/v1/periods",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=program.headers,
        )
    ).json()
    assert [(p["period"], p["status"]) for p in rest["items"]] == [("2026-08", "closed")]
    assert rest["next_cursor"] is None


async def test_statements_page_by_member_and_stream_as_csv(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B", "C")
    # A name that a spreadsheet would run as a formula is exported as text.
    renamed = await client.patch(
        "/v1/members/B", json={"name": '=HYPERLINK("x")'}, headers=program.headers
    )
    assert renamed.status_code == 200, renamed.text
    await post_sale(client, program, "O-1", "C", "100.00", occurred_at="2026-08-10T00:00:00Z")
    # C 10.00 personal, B 5.00 override; A is beyond the plan's one level.
    open_page = (
        await client.get("/v1/periods/2026-08/statements?limit=1", headers=program.headers)
    ).json()
    assert open_page["status"] == "open"
    assert [s["member_id"] for s in open_page["items"]] == ["B"]
    await closed(client, program, "2026-08")
    page = (
        await client.get("/v1/periods/2026-08/statements?limit=1", headers=program.headers)
    ).json()
    assert (page["status"], [s["member_id"] for s in page["items"]]) == ("closed", ["B"])
    after = (
        await client.get(
            "/v1/periods/2026-08/statements",
            params={"limit": 1, "cursor": page["next_cursor"]},
            headers=program.headers,
        )
    ).json()
    assert [s["member_id"] for s in after["items"]] == ["C"]
    assert after["next_cursor"] is None
    wrong = await client.get(
        "/v1/periods/2026-09/statements",
        params={"cursor": page["next_cursor"]},
        headers=program.headers,
    )
    assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_cursor")
    response = await client.get(
        "/v1/periods/2026-08/statements", headers={**program.headers, "Accept": "text/csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        "member_id,name,rank,personal,override,reversal,bonus,earned,carried_in,payable,"
        "carried_out,currency",
        'B,"\'=HYPERLINK(""x"")",,0.00,5.00,0.00,0.00,5.00,0.00,5.00,0.00,USD',
        "C,C,,10.00,0.00,0.00,0.00,10.00,0.00,10.00,0.00,USD",
    ]


async def test_an_open_periods_member_statement_is_what_is_booked_so_far(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-11-10T00:00:00Z")
    await refund(client, program, "O-1", "R-1", "30.00", occurred_at="2026-11-12T00:00:00Z")
    body = (await client.get("/v1/members/A/statements/2026-11", headers=program.headers)).json()
    # A: 5.00 override, -1.50 reversal (30% of 5.00).
    assert (body["status"], body["override"], body["reversal"], body["earned"]) == (
        "open",
        "5.00",
        "-1.50",
        "3.50",
    )
    assert body["levels"] == [{"level": 1, "earned": "5.00", "reversal": "-1.50", "total": "3.50"}]
    nobody = await client.get("/v1/members/NOPE/statements/2026-11", headers=program.headers)
    assert (nobody.status_code, nobody.json()["code"]) == (404, "member_not_found")


async def test_two_concurrent_closes_close_once_and_answer_the_same(
    engine: AsyncEngine, live_client: httpx.AsyncClient, live_program: Program
) -> None:
    await put_plan(live_client, live_program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(live_client, live_program, "A", "B")
    await post_sale(
        live_client, live_program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z"
    )
    first, second = await asyncio.gather(
        close(live_client, live_program, "2026-08"), close(live_client, live_program, "2026-08")
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == second.json()
    assert first.json()["status"] == "closed"
    async with engine.connect() as connection:
        count = await connection.execute(
            text("SELECT count(*) FROM statements WHERE program_id = :p"), {"p": live_program.id}
        )
        assert count.scalar_one() == 2
    # A sale of August arriving now is booked in September.
    late = await post_sale(
        live_client, live_program, "O-2", "B", "10.00", occurred_at="2026-08-20T00:00:00Z"
    )
    assert late["sale"]["period"] == "2026-09"


async def test_the_cli_closes_a_period_and_prints_its_summary_alone(
    database_url: str, live_client: httpx.AsyncClient, live_program: Program
) -> None:
    await put_plan(live_client, live_program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(live_client, live_program, "A", "B")
    await post_sale(
        live_client, live_program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z"
    )
    env = {**os.environ, "DATABASE_URL": database_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service", "period", "close", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dry = run("2026-08", "--program", live_program.id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    dry_summary = json.loads(dry.stdout)
    assert (dry_summary["status"], dry_summary["closed_at"]) == ("open", None)
    done = run("2026-08", "--program", live_program.id)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # JSON alone on stdout
    assert summary["status"] == "closed"
    assert money_totals(summary) == ("15.00", "0.00", "15.00", "0.00")
    over_http = await live_client.get("/v1/periods/2026-08", headers=live_program.headers)
    assert over_http.json() == summary
    refused = run("2099-01", "--program", live_program.id)
    assert (refused.returncode, refused.stdout) == (2, "")
    # stderr: the notice of the database used, then the refusal as JSON
    assert json.loads(refused.stderr.splitlines()[-1])["error"] == "period_not_ended"


async def test_a_sale_racing_a_close_waits_and_is_booked_in_the_next_period(
    engine: AsyncEngine,
    live_client: httpx.AsyncClient,
    live_sessions: async_sessionmaker[AsyncSession],
    live_program: Program,
) -> None:
    await put_plan(live_client, live_program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(live_client, live_program, "A", "B")
    await post_sale(
        live_client, live_program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z"
    )
    now = datetime.now(UTC)
    # A close that dies before it commits leaves the period open and nothing written.
    async with live_sessions() as session:
        program = await program_sql.get_program(session, live_program.id)
        assert program is not None
        await periods.close_period(session, program, "2026-08", dry_run=False, now=now)
        await session.rollback()
    status = await live_client.get("/v1/periods/2026-08", headers=live_program.headers)
    assert status.json()["status"] == "open"
    async with engine.connect() as connection:
        count = await connection.execute(
            text("SELECT count(*) FROM statements WHERE program_id = :p"), {"p": live_program.id}
        )
        assert count.scalar_one() == 0
    # A close in progress holds the program's lock: an August sale posted meanwhile waits,
    # then, August being closed, is booked in September.
    async with live_sessions() as session:
        await periods.close_period(session, program, "2026-08", dry_run=False, now=now)
        racing = asyncio.ensure_future(
            post_sale(
                live_client, live_program, "O-2", "B", "10.00", occurred_at="2026-08-20T00:00:00Z"
            )
        )
        racing_refund = asyncio.ensure_future(
            refund(
                live_client, live_program, "O-1", "R-1", "10.00", occurred_at="2026-08-21T00:00:00Z"
            )
        )
        await asyncio.sleep(0.5)
        assert not racing.done()
        assert not racing_refund.done()
        await session.commit()
    late = await racing
    assert late["sale"]["period"] == "2026-09"
    late_refund = await racing_refund
    assert late_refund["refund"]["period"] == "2026-09"
    august = await live_client.get("/v1/periods/2026-08/statements", headers=live_program.headers)
    # August: O-1 alone (B 10.00, A 5.00).
    assert [(s["member_id"], s["earned"]) for s in august.json()["items"]] == [
        ("A", "5.00"),
        ("B", "10.00"),
    ]


async def test_the_csv_streams_every_statement_across_batches(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    members = [f"M{i:05d}" for i in range(4_500)]
    await insert_tree(connection, program.id, [("ROOT", None), *((m, "ROOT") for m in members)])
    # Each member earns (i + 1) cents personal in August, written straight to the ledger.
    await connection.execute(
        text(
            """
            INSERT INTO commission_lines (program_id, sale_id, earner_id, source_member_id,
                kind, level, paid_level, rate, base, amount, period, plan_version)
            SELECT :p, 'S-' || m, m, m, 'personal', 0, 0, 0.1, 1, (i + 1) / 100.0, '2026-08', 1
            FROM unnest(CAST(:members AS text[])) WITH ORDINALITY AS t(m, i)
            """
        ),
        {"p": program.id, "members": members},
    )
    await connection.execute(
        text(
            "INSERT INTO member_period_volumes (program_id, member_id, period, lo, depth)"
            " VALUES (:p, 'ROOT', '2026-08', 0, 0)"
        ),
        {"p": program.id},
    )
    summary = await closed(client, program, "2026-08")
    # 0.02 + 0.03 + ... + 45.01: 4,500 terms averaging 22.515 = 101,317.50
    assert (summary["statements"], summary["totals"]["earned"]) == (4_500, "101317.50")
    response = await client.get(
        "/v1/periods/2026-08/statements", headers={**program.headers, "Accept": "text/csv"}
    )
    lines = response.text.splitlines()
    assert len(lines) == 4_501
    assert lines[1] == "M00000,,,0.02,0.00,0.00,0.00,0.02,0.00,0.02,0.00,USD"
    assert lines[-1] == "M04499,,,45.01,0.00,0.00,0.00,45.01,0.00,45.01,0.00,USD"
    assert [line.split(",")[0] for line in lines[1:]] == members


async def test_webhook_events_of_a_closed_month_land_in_the_oldest_open_period(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, effective_from=SINCE, categories=PRODUCT)
    await enroll_chain(client, program, "A", "B")
    await post_sale(client, program, "O-1", "B", "100.00", occurred_at="2026-08-10T00:00:00Z")
    await closed(client, program, "2026-08")
    batch = {
        "events": [
            {
                "id": "evt-sale",
                "type": "sale.completed",
                "occurred_at": "2026-08-30T00:00:00Z",
                "data": {
                    "id": "O-2",
                    "member_id": "B",
                    "amount": "20.00",
                    "currency": "USD",
                    "occurred_at": "2026-08-30T00:00:00Z",
                },
            },
            {
                "id": "evt-refund",
                "type": "sale.refunded",
                "occurred_at": "2026-08-31T00:00:00Z",
                "data": {
                    "sale_id": "O-1",
                    "id": "R-1",
                    "amount": "50.00",
                    "occurred_at": "2026-08-31T00:00:00Z",
                },
            },
        ]
    }
    response = await client.post("/v1/events", json=batch, headers=program.headers)
    assert response.status_code == 200, response.text
    sale, refunded = response.json()["results"]
    assert (sale["status"], sale["body"]["sale"]["period"]) == (201, "2026-09")
    assert (refunded["status"], refunded["body"]["refund"]["period"]) == (201, "2026-09")
    # The same deliveries retried answer as they were first applied.
    again = await client.post("/v1/events", json=batch, headers=program.headers)
    assert [r["duplicate"] for r in again.json()["results"]] == [True, True]
    # September: B 2.00 + A 1.00 for O-2; half of O-1 given back: B -5.00, A -2.50.
    september = await closed(client, program, "2026-09")
    assert money_totals(september) == ("-4.50", "0.00", "0.00", "-4.50")
    # Volume: 20.00 sold, 50.00 refunded, both of closed August, booked in September.
    assert september["volume"] == "-30.00"


async def test_the_csv_prints_the_currencys_digits_and_keeps_cells_safe(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """In KWD (3 digits) the amounts keep their three decimals; a name that begins as a
    spreadsheet formula would is prefixed with an apostrophe, and one with a comma, a quote
    or a line break is quoted: in an open period's CSV as in a closed one's."""
    kwd = await make_program(sessions, "kwd", currency="KWD")
    six_levels = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"] * 6}}
    await put_plan(client, kwd, effective_from=SINCE, categories=six_levels)
    names = ["+1", "-1", "@sum", "\tx", "\rx", 'a, "b"\nc', "plain"]
    sponsor = None
    for i, name in enumerate(names):
        response = await client.post(
            "/v1/members",
            json={"id": f"K{i}", "sponsor_id": sponsor, "enrolled_at": SINCE, "name": name},
            headers=kwd.headers,
        )
        assert response.status_code == 201, response.text
        sponsor = f"K{i}"
    # K6 sells 1.005 KWD: 0.1005 personal rounds half-even to 0.100 (K6), each 0.05025
    # override to 0.050 (K5 up to K0).
    await post_sale(client, kwd, "O-1", "K6", "1.005", occurred_at="2026-08-10T00:00:00Z")
    override = "0.000,0.050,0.000,0.000,0.050,0.000,0.050,0.000,KWD"
    expected = [
        "member_id,name,rank,personal,override,reversal,bonus,earned,carried_in,payable,"
        "carried_out,currency",
        f"K0,'+1,,{override}",
        f"K1,'-1,,{override}",
        f"K2,'@sum,,{override}",
        f"K3,'\tx,,{override}",
        f'K4,"\'\rx",,{override}',
        f'K5,"a, ""b""\nc",,{override}',
        "K6,plain,,0.100,0.000,0.000,0.000,0.100,0.000,0.100,0.000,KWD",
    ]
    for status in ("open", "closed"):
        if status == "closed":
            await closed(client, kwd, "2026-08")
        response = await client.get(
            "/v1/periods/2026-08/statements", headers={**kwd.headers, "Accept": "text/csv"}
        )
        assert response.status_code == 200
        assert response.text.split("\r\n") == [*expected, ""], status
