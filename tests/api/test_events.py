"""Webhook intake: exactly once, out of order, authentic."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from service.db import intake as intake_sql
from service.intake import signatures
from tests.api.flows import enroll_chain, paid, put_plan
from tests.conftest import Program, make_key, make_program

PLAN = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}


def sale_event(event_id: str, sale_id: str, member_id: str, amount: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "sale.completed",
        "occurred_at": "2026-11-03T10:00:00Z",
        "data": {
            "id": sale_id,
            "member_id": member_id,
            "amount": amount,
            "currency": "USD",
            "occurred_at": "2026-11-03T10:00:00Z",
        },
    }


def enrolled_event(event_id: str, member_id: str, sponsor_id: str | None) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "member.enrolled",
        "occurred_at": "2026-11-01T00:00:00Z",
        "data": {"id": member_id, "sponsor_id": sponsor_id, "enrolled_at": "2026-11-01T00:00:00Z"},
    }


async def post_events(
    client: httpx.AsyncClient, program: Program, payload: Any, **headers: str
) -> httpx.Response:
    return await client.post("/v1/events", json=payload, headers={**program.headers, **headers})


async def test_each_event_type_does_what_its_rest_call_does(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PLAN)
    events = [
        enrolled_event("e1", "A", None),
        enrolled_event("e2", "B", "A"),
        enrolled_event("e3", "S", "B"),
        {
            "id": "e4",
            "type": "member.updated",
            "occurred_at": "2026-11-02T00:00:00Z",
            "data": {"id": "S", "name": "Sam"},
        },
        sale_event("e5", "O-1", "S", "100.00"),
        {
            "id": "e6",
            "type": "sale.refunded",
            "occurred_at": "2026-11-04T00:00:00Z",
            "data": {
                "sale_id": "O-1",
                "id": "R-1",
                "amount": "50.00",
                "occurred_at": "2026-11-04T00:00:00Z",
            },
        },
        {
            "id": "e7",
            "type": "member.moved",
            "occurred_at": "2026-11-05T00:00:00Z",
            "data": {"id": "S", "sponsor_id": "A"},
        },
    ]
    response = await post_events(client, program, {"events": events})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["status"], r["duplicate"]) for r in results] == [
        ("e1", 201, False),
        ("e2", 201, False),
        ("e3", 201, False),
        ("e4", 200, False),
        ("e5", 201, False),
        ("e6", 201, False),
        ("e7", 200, False),
    ]
    assert results[3]["body"]["name"] == "Sam"
    # 100 x 0.10 = 10.00 to S, 100 x 0.05 = 5.00 to B, 100 x 0.03 = 3.00 to A
    assert paid(results[4]["body"]["lines"]) == [
        ("S", "personal", 0, 0, "0.10", "10.00"),
        ("B", "override", 1, 1, "0.05", "5.00"),
        ("A", "override", 2, 2, "0.03", "3.00"),
    ]
    assert [x["amount"] for x in results[5]["body"]["lines"]] == ["-5.00", "-2.50", "-1.50"]
    assert results[6]["body"]["sponsor_id"] == "A"
    # What the REST API answers is what the events answered.
    sale = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert sale["sale"] == results[4]["body"]["sale"] | {"refunded": "50.00"}


async def test_a_replay_answers_as_the_first_delivery_did(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PLAN)
    await enroll_chain(client, program, "A", "S")
    first = await post_events(client, program, sale_event("evt_1", "O-1", "S", "10.00"))
    again = await post_events(client, program, sale_event("evt_1", "O-1", "S", "10.00"))
    assert first.status_code == again.status_code == 201
    assert first.json()["duplicate"] is False
    assert again.json()["duplicate"] is True
    assert again.json()["body"] == first.json()["body"]
    sale = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert len(sale["lines"]) == 2


async def test_a_sale_is_remembered_by_reference_and_replayed_as_first_answered(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(client, program, categories=PLAN)
    await enroll_chain(client, program, "A", "S")
    single = await post_events(client, program, sale_event("evt_1", "O-1", "S", "10.00"))
    batch = await post_events(
        client, program, {"events": [sale_event("evt_2", "O-2", "S", "20.00")]}
    )
    rest = await client.post(
        "/v1/sales",
        json=sale_event("x", "O-3", "S", "30.00")["data"],
        headers={**program.headers, "Idempotency-Key": "sale-3"},
    )
    assert single.status_code == rest.status_code == 201
    # What is remembered is the sale's id, not the answer's body.
    stored = (
        await connection.execute(
            text(
                "SELECT request_key, response FROM applied_requests"
                " WHERE program_id = :p ORDER BY request_key"
            ),
            {"p": program.id},
        )
    ).all()
    assert [(key, response) for key, response in stored] == [
        ("evt_1", {"$answer": {"sale_id": "O-1"}}),
        ("evt_2", {"$answer": {"sale_id": "O-2"}}),
        ("sale-3", {"$answer": {"sale_id": "O-3"}}),
    ]
    # Refunds change the sales since...
    for sale_id in ("O-1", "O-2", "O-3"):
        refunded = await client.post(
            f"/v1/sales/{sale_id}/refunds",
            json={"id": f"R-{sale_id}", "amount": "5.00", "occurred_at": "2026-11-04T00:00:00Z"},
            headers=program.headers,
        )
        assert refunded.status_code == 201
    # ...but each replay answers exactly what the first delivery answered: refunded 0.00.
    again = await post_events(client, program, sale_event("evt_1", "O-1", "S", "10.00"))
    assert again.json()["body"] == single.json()["body"]
    assert again.json()["body"]["sale"]["refunded"] == "0.00"
    assert [line["amount"] for line in again.json()["body"]["lines"]] == ["1.00", "0.50"]
    batch_again = await post_events(
        client, program, {"events": [sale_event("evt_2", "O-2", "S", "20.00")]}
    )
    assert batch_again.json()["results"][0]["duplicate"] is True
    assert batch_again.json()["results"][0]["body"] == batch.json()["results"][0]["body"]
    rest_again = await client.post(
        "/v1/sales",
        json=sale_event("x", "O-3", "S", "30.00")["data"],
        headers={**program.headers, "Idempotency-Key": "sale-3"},
    )
    assert (rest_again.status_code, rest_again.json()) == (201, rest.json())


async def test_same_event_id_with_another_body_is_409(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PLAN)
    await enroll_chain(client, program, "A", "S")
    await post_events(client, program, sale_event("evt_1", "O-1", "S", "10.00"))
    response = await post_events(client, program, sale_event("evt_1", "O-1", "S", "11.00"))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "event_conflict"
    assert response.json()["id"] == "evt_1"


async def test_out_of_order_events_are_refused_then_succeed_on_retry(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PLAN)
    sale = sale_event("evt_sale", "O-1", "NEW", "20.00")
    refund = {
        "id": "evt_refund",
        "type": "sale.refunded",
        "occurred_at": "2026-11-04T00:00:00Z",
        "data": {
            "sale_id": "O-1",
            "id": "R-1",
            "amount": "5.00",
            "occurred_at": "2026-11-04T00:00:00Z",
        },
    }
    moved = {
        "id": "evt_move",
        "type": "member.moved",
        "occurred_at": "2026-11-04T00:00:00Z",
        "data": {"id": "NEW", "sponsor_id": None},
    }
    response = await post_events(client, program, {"events": [refund, sale, moved]})
    results = response.json()["results"]
    assert [(r["id"], r["status"], r["code"]) for r in results] == [
        ("evt_refund", 422, "unknown_sale"),
        ("evt_sale", 422, "unknown_member"),
        ("evt_move", 422, "unknown_member"),
    ]
    assert (await client.get("/v1/sales/O-1", headers=program.headers)).status_code == 404
    # The enrolment arrives; the sender retries everything, in any order.
    response = await post_events(
        client, program, {"events": [enrolled_event("evt_enrol", "NEW", None), sale, refund]}
    )
    assert [r["status"] for r in response.json()["results"]] == [201, 201, 201]
    detail = (await client.get("/v1/sales/O-1", headers=program.headers)).json()
    assert detail["sale"]["refunded"] == "5.00"


async def test_one_refused_event_does_not_undo_the_others(
    client: httpx.AsyncClient, program: Program
) -> None:
    await put_plan(client, program, categories=PLAN)
    await enroll_chain(client, program, "S")
    events = [
        sale_event("a", "O-1", "S", "10.00"),
        sale_event("b", "O-2", "S", "10.001"),
        {"id": "c", "type": "sale.teleported", "occurred_at": "2026-11-03T10:00:00Z", "data": {}},
        {"type": "sale.completed"},
        "not an object",
        sale_event("d", "O-3", "S", "30.00"),
        sale_event("a", "O-1", "S", "10.00"),
    ]
    results = (await post_events(client, program, {"events": events})).json()["results"]
    assert [(r["id"], r["status"], r.get("code"), r.get("duplicate")) for r in results] == [
        ("a", 201, None, False),
        ("b", 422, "invalid_amount", None),
        ("c", 422, "validation_error", None),
        (None, 422, "validation_error", None),
        (None, 422, "validation_error", None),
        ("d", 201, None, False),
        ("a", 201, None, True),
    ]
    assert results[2]["errors"][0]["loc"] == ["type"]
    for sale_id, status in [("O-1", 200), ("O-2", 404), ("O-3", 200)]:
        response = await client.get(f"/v1/sales/{sale_id}", headers=program.headers)
        assert response.status_code == status


async def test_invalid_data_names_the_field(client: httpx.AsyncClient, program: Program) -> None:
    event = sale_event("x", "O-1", "S", "10.00")
    event["data"]["amount"] = 10.5
    response = await post_events(client, program, event)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["loc"] == ["data", "amount"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"events": []}, 422, "validation_error"),
        ({"events": "all of them"}, 422, "validation_error"),
        ({"events": [{}] * 1001}, 413, "batch_too_large"),
        ({"events": [], "extra": 1}, 422, "validation_error"),
    ],
)
async def test_batch_bounds(
    client: httpx.AsyncClient, program: Program, payload: Any, status: int, code: str
) -> None:
    response = await post_events(client, program, payload)
    assert response.status_code == status
    assert response.json()["code"] == code


async def test_malformed_body_is_400(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.post(
        "/v1/events",
        content=b"{nope",
        headers={**program.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_a_full_batch_of_a_thousand(client: httpx.AsyncClient, program: Program) -> None:
    await put_plan(client, program, categories=PLAN)
    await enroll_chain(client, program, "A", "S")
    events = [sale_event(f"e{i}", f"O-{i}", "S", "1.00") for i in range(1000)]
    response = await post_events(client, program, {"events": events})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1000
    assert {r["status"] for r in results} == {201}
    # A earns 1000 x 1.00 x 0.05 = 50.00 at level 1 from 1000 sales of one seller.
    overrides = (
        await client.get("/v1/members/A/overrides?period=2026-11", headers=program.headers)
    ).json()
    assert overrides["levels"] == [
        {
            "level": 1,
            "rate": "0.05",
            "members": 1,
            "sales": 1000,
            "volume": "1000.00",
            "amount": "50.00",
        }
    ]


async def test_events_need_events_write(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    reader = await make_key(sessions, program.id, "read")
    response = await client.post("/v1/events", json=enrolled_event("e", "M", None), headers=reader)
    assert response.status_code == 403
    response = await client.post("/v1/events", json=enrolled_event("e", "M", None))
    assert response.status_code == 401
    writer = await make_key(sessions, program.id, "events:write")
    response = await client.post("/v1/events", json=enrolled_event("e", "M", None), headers=writer)
    assert response.status_code == 201
    # A key never reaches another program, even when the query names it.
    other = await make_program(sessions, "globex")
    response = await client.post(
        f"/v1/events?program={other.id}", json=enrolled_event("e2", "M2", None), headers=writer
    )
    assert response.status_code == 404


# --- Standard Webhooks signatures -------------------------------------------------------


async def new_secret(
    sessions: async_sessionmaker[AsyncSession], program_id: str
) -> tuple[str, str]:
    async with sessions() as session, session.begin():
        row = await signatures.create_secret(session, program_id)
    return row.secret_id, row.secret


def signed(
    secret: str, body: bytes, *, message_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    timestamp = at or datetime.now(UTC)
    signature = Webhook(secret).sign(message_id, timestamp, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def test_signed_delivery_is_accepted(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, secret = await new_secret(sessions, program.id)
    body = json.dumps(enrolled_event("e1", "M1", None)).encode()
    response = await client.post(
        f"/v1/events?program={program.id}", content=body, headers=signed(secret, body)
    )
    assert response.status_code == 201, response.text
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 200


def _tampered(secret: str, body: bytes) -> dict[str, str]:
    headers = signed(secret, body)
    headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    return headers


@pytest.mark.parametrize(
    "forge",
    [
        "wrong_secret",
        "tampered_body",
        "stale",
        "future",
        "no_timestamp",
        "garbage",
        "no_program",
        "revoked",
        "other_program",
    ],
)
async def test_bad_signatures_are_401_and_write_nothing(
    client: httpx.AsyncClient,
    program: Program,
    sessions: async_sessionmaker[AsyncSession],
    forge: str,
) -> None:
    secret_id, secret = await new_secret(sessions, program.id)
    body = json.dumps(enrolled_event("e1", "M1", None)).encode()
    url = f"/v1/events?program={program.id}"
    headers = signed(secret, body)
    content = body
    if forge == "wrong_secret":
        headers = signed("whsec_" + base64.b64encode(b"k" * 32).decode(), body)
    elif forge == "tampered_body":
        content = body.replace(b"M1", b"M2")
    elif forge == "stale":
        headers = signed(secret, body, at=datetime.now(UTC) - timedelta(minutes=5, seconds=30))
    elif forge == "future":
        headers = signed(secret, body, at=datetime.now(UTC) + timedelta(minutes=5, seconds=30))
    elif forge == "no_timestamp":
        del headers["webhook-timestamp"]
    elif forge == "garbage":
        headers["webhook-signature"] = "v1"
    elif forge == "no_program":
        url = "/v1/events"
    elif forge == "revoked":
        async with sessions() as session, session.begin():
            await signatures.revoke_secret(session, program.id, secret_id)
    elif forge == "other_program":
        other = await make_program(sessions, "globex")
        _, other_secret = await new_secret(sessions, other.id)
        headers = signed(other_secret, body)
    response = await client.post(url, content=content, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    for member in ("M1", "M2"):
        assert (
            await client.get(f"/v1/members/{member}", headers=program.headers)
        ).status_code == 404


async def test_timestamps_within_five_minutes_either_way_are_accepted(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, secret = await new_secret(sessions, program.id)
    for i, skew in enumerate(
        [timedelta(minutes=-4, seconds=-30), timedelta(minutes=4, seconds=30)]
    ):
        body = json.dumps(enrolled_event(f"e{i}", f"M{i}", None)).encode()
        headers = signed(secret, body, at=datetime.now(UTC) + skew)
        response = await client.post(
            f"/v1/events?program={program.id}", content=body, headers=headers
        )
        assert response.status_code == 201


async def test_secret_rotation_accepts_old_and_new_and_several_signatures(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    old_id, old = await new_secret(sessions, program.id)
    _, new = await new_secret(sessions, program.id)
    url = f"/v1/events?program={program.id}"
    for i, secret in enumerate([old, new]):
        body = json.dumps(enrolled_event(f"e{i}", f"M{i}", None)).encode()
        assert (
            await client.post(url, content=body, headers=signed(secret, body))
        ).status_code == 201
    # A sender signing with both secrets at once: one header, two signatures.
    body = json.dumps(enrolled_event("e2", "M2", None)).encode()
    headers = signed(new, body)
    wrong = _tampered(old, body)["webhook-signature"]
    headers["webhook-signature"] = f"{wrong} {headers['webhook-signature']}"
    assert (await client.post(url, content=body, headers=headers)).status_code == 201
    # The old secret retired: its signatures stop working, the new one's go on.
    async with sessions() as session, session.begin():
        await signatures.revoke_secret(session, program.id, old_id)
    body = json.dumps(enrolled_event("e3", "M3", None)).encode()
    assert (await client.post(url, content=body, headers=signed(old, body))).status_code == 401
    assert (await client.post(url, content=body, headers=signed(new, body))).status_code == 201


# --- REST Idempotency-Key ----------------------------------------------------------------


async def test_idempotency_key_on_rest_posts(client: httpx.AsyncClient, program: Program) -> None:
    await enroll_chain(client, program, "ROOT", "A", "B")
    key = {"Idempotency-Key": "move-1"}
    first = await client.post(
        "/v1/members/B/move", json={"sponsor_id": "ROOT"}, headers={**program.headers, **key}
    )
    # Meanwhile B moves back by another request...
    await client.post("/v1/members/B/move", json={"sponsor_id": "A"}, headers=program.headers)
    # ...and the retry of the first one does not move B again: it answers the first answer.
    again = await client.post(
        "/v1/members/B/move", json={"sponsor_id": "ROOT"}, headers={**program.headers, **key}
    )
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    member = (await client.get("/v1/members/B", headers=program.headers)).json()
    assert member["sponsor_id"] == "A"
    moves = (await client.get("/v1/members/B/moves", headers=program.headers)).json()["items"]
    assert len(moves) == 2
    # The same key on another request is a conflict.
    response = await client.post(
        "/v1/members/B/move", json={"sponsor_id": "A"}, headers={**program.headers, **key}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"


async def test_refused_request_does_not_use_up_its_key(
    client: httpx.AsyncClient, program: Program
) -> None:
    headers = {**program.headers, "Idempotency-Key": "k1"}
    response = await client.post(
        "/v1/members", json={"id": "M", "sponsor_id": "X"}, headers=headers
    )
    assert response.status_code == 422
    await enroll_chain(client, program, "X")
    response = await client.post(
        "/v1/members", json={"id": "M", "sponsor_id": "X"}, headers=headers
    )
    assert response.status_code == 201


# --- Real concurrency and crashes (committed data, a program of their own) ---------------


async def _count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def test_two_hundred_concurrent_identical_deliveries_apply_once(
    engine: AsyncEngine, live_client: httpx.AsyncClient, live_program: Program
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    await enroll_chain(live_client, live_program, "A", "B", "S")
    event = sale_event("evt_concurrent", "O-1", "S", "100.00")
    responses = await asyncio.gather(
        *(post_events(live_client, live_program, event) for _ in range(200))
    )
    assert {r.status_code for r in responses} == {201}
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 199
    assert len({json.dumps(r.json()["body"], sort_keys=True) for r in responses}) == 1
    program_id = live_program.id
    lines = await _count(
        engine,
        "SELECT count(*) FROM commission_lines WHERE program_id = :p AND sale_id = 'O-1'",
        p=program_id,
    )
    assert lines == 3  # S personal, B level 1, A level 2: once
    total = await _count(
        engine,
        "SELECT sum(amount) * 100 FROM commission_lines WHERE program_id = :p",
        p=program_id,
    )
    assert total == 1800  # 10.00 + 5.00 + 3.00
    assert (
        await _count(
            engine,
            "SELECT count(*) FROM applied_requests WHERE program_id = :p AND scope = 'event'",
            p=program_id,
        )
        == 1
    )
    volume = await _count(
        engine,
        "SELECT volume * 100 FROM member_period_volumes WHERE program_id = :p AND member_id = 'S'",
        p=program_id,
    )
    assert volume == 10000


async def test_concurrent_identical_rest_posts_apply_once(
    engine: AsyncEngine, live_client: httpx.AsyncClient, live_program: Program
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    await enroll_chain(live_client, live_program, "A", "S")
    body = {
        "id": "O-9",
        "member_id": "S",
        "amount": "50.00",
        "currency": "USD",
        "occurred_at": "2026-11-03T10:00:00Z",
    }
    responses = await asyncio.gather(
        *(live_client.post("/v1/sales", json=body, headers=live_program.headers) for _ in range(50))
    )
    assert sorted(r.status_code for r in responses) == [200] * 49 + [201]
    lines = await _count(
        engine,
        "SELECT count(*) FROM commission_lines WHERE program_id = :p AND sale_id = 'O-9'",
        p=live_program.id,
    )
    assert lines == 2


async def test_concurrent_refunds_never_exceed_the_sale(
    engine: AsyncEngine, live_client: httpx.AsyncClient, live_program: Program
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    await enroll_chain(live_client, live_program, "A", "S")
    await live_client.post(
        "/v1/sales",
        json={
            "id": "O-1",
            "member_id": "S",
            "amount": "100.00",
            "currency": "USD",
            "occurred_at": "2026-11-03T10:00:00Z",
        },
        headers=live_program.headers,
    )
    responses = await asyncio.gather(
        *(
            live_client.post(
                "/v1/sales/O-1/refunds",
                json={"id": f"R-{i}", "amount": "30.00", "occurred_at": "2026-11-10T00:00:00Z"},
                headers=live_program.headers,
            )
            for i in range(10)
        )
    )
    # 100.00 holds three refunds of 30.00; the other seven find 10.00 left.
    assert sorted(r.status_code for r in responses) == [201] * 3 + [422] * 7
    refunded = await _count(
        engine,
        "SELECT refunded * 100 FROM sales WHERE program_id = :p AND sale_id = 'O-1'",
        p=live_program.id,
    )
    assert refunded == 9000


async def test_a_crash_before_commit_leaves_nothing_half_written(
    engine: AsyncEngine,
    live_client: httpx.AsyncClient,
    live_program: Program,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    await enroll_chain(live_client, live_program, "A", "S")

    async def crash(*args: Any, **kwargs: Any) -> None:
        # The sale and its lines are written in this transaction by now; the process dies
        # before the event is remembered and the transaction commits.
        raise RuntimeError("power cut")

    monkeypatch.setattr(intake_sql, "answer_claims", crash)
    response = await post_events(
        live_client, live_program, sale_event("evt_crash", "O-1", "S", "10.00")
    )
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    for table in ("sales", "commission_lines", "applied_requests", "member_period_volumes"):
        count = await _count(
            engine,
            f"SELECT count(*) FROM {table} WHERE program_id = :p",  # noqa: S608 (fixed names)
            p=live_program.id,
        )
        assert count == 0, table
    monkeypatch.undo()
    # The sender retries: applied, once.
    response = await post_events(
        live_client, live_program, sale_event("evt_crash", "O-1", "S", "10.00")
    )
    assert response.status_code == 201
    assert response.json()["duplicate"] is False
    lines = await _count(
        engine, "SELECT count(*) FROM commission_lines WHERE program_id = :p", p=live_program.id
    )
    assert lines == 2


async def test_signature_timestamp_is_checked_against_now(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    _, secret = await new_secret(sessions, program.id)
    body = json.dumps(enrolled_event("e1", "M1", None)).encode()
    headers = signed(secret, body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    response = await client.post(f"/v1/events?program={program.id}", content=body, headers=headers)
    assert response.status_code == 201


async def test_a_batch_rolled_back_to_break_a_deadlock_is_refused_for_a_retry(
    engine: AsyncEngine, live_client: httpx.AsyncClient, live_program: Program
) -> None:
    """A refund locks its seller's volume row, then a sale in the same batch waits for its
    own seller's, which another transaction holds while it waits for the first: PostgreSQL
    breaks the deadlock by rolling the batch back, which answers 503 `retry_later` (not a
    500), and the same batch sent again is applied."""
    await put_plan(live_client, live_program, categories=PLAN)
    await enroll_chain(live_client, live_program, "A", "S1")
    await enroll_chain(live_client, live_program, "B", "S2")
    for event in (sale_event("e1", "O-1", "S1", "20.00"), sale_event("e2", "O-2", "S2", "20.00")):
        assert (await post_events(live_client, live_program, event)).status_code == 201
    refund = {
        "id": "e3",
        "type": "sale.refunded",
        "occurred_at": "2026-11-04T00:00:00Z",
        "data": {
            "sale_id": "O-1",
            "id": "R-1",
            "amount": "5.00",
            "occurred_at": "2026-11-04T00:00:00Z",
        },
    }
    batch = {"events": [refund, sale_event("e4", "O-3", "S2", "10.00")]}
    lock = text(
        "SELECT 1 FROM member_period_volumes WHERE program_id = :p AND member_id = :m FOR UPDATE"
    )
    async with engine.connect() as other:
        await other.execute(lock, {"p": live_program.id, "m": "S2"})
        sent = asyncio.ensure_future(
            live_client.post("/v1/events", json=batch, headers=live_program.headers)
        )
        for _ in range(500):  # until the batch waits for S2's row
            if await _count(
                engine,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()",
            ):
                break
            await asyncio.sleep(0.02)
        await other.execute(lock, {"p": live_program.id, "m": "S1"})  # waits on the batch
        response = await sent
        await other.rollback()
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "retry_later"
    assert response.headers["retry-after"] == "1"
    assert (
        await _count(
            engine, "SELECT count(*) FROM refunds WHERE program_id = :p", p=live_program.id
        )
        == 0
    )
    again = await live_client.post("/v1/events", json=batch, headers=live_program.headers)
    assert [r["status"] for r in again.json()["results"]] == [201, 201]


def enrolled_at_event(
    event_id: str, member_id: str, sponsor_id: str | None, enrolled_at: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"id": member_id, "sponsor_id": sponsor_id}
    if enrolled_at is not None:
        data["enrolled_at"] = enrolled_at
    return {
        "id": event_id,
        "type": "member.enrolled",
        "occurred_at": "2026-11-01T00:00:00Z",
        "data": data,
    }


async def test_an_enrolment_event_before_its_sponsor_is_refused_and_retried_later(
    client: httpx.AsyncClient, program: Program
) -> None:
    root = enrolled_at_event("e1", "ROOT", None, "2026-11-02T00:00:00Z")
    assert (await post_events(client, program, root)).status_code == 201
    early = enrolled_at_event("e2", "M", "ROOT", "2026-11-01T00:00:00Z")
    response = await post_events(client, program, early)
    assert response.status_code == 422
    assert response.json()["code"] == "enrolled_before_sponsor"
    assert (await client.get("/v1/members/M", headers=program.headers)).status_code == 404
    # Nothing was remembered: the sender may correct the date under the same event id.
    corrected = enrolled_at_event("e2", "M", "ROOT", "2026-11-02T00:00:00Z")
    assert (await post_events(client, program, corrected)).status_code == 201


async def test_a_batch_refuses_each_enrolment_before_its_sponsor_alone(
    client: httpx.AsyncClient, program: Program
) -> None:
    # A is enrolled now (no enrolled_at) in the same batch: B, dated in the past, is
    # refused, and so is C under the B that was never written. D, under A at a later
    # instant than now, and E at the same instant as D, are enrolled.
    batch = [
        enrolled_at_event("e1", "A", None, None),
        enrolled_at_event("e2", "B", "A", "2026-01-01T00:00:00Z"),
        enrolled_at_event("e3", "C", "B", "2026-01-02T00:00:00Z"),
        enrolled_at_event("e4", "D", "A", "2999-01-01T00:00:00Z"),
        enrolled_at_event("e5", "E", "D", "2999-01-01T00:00:00Z"),
    ]
    response = await post_events(client, program, {"events": batch})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["id"], r["status"], r.get("code")) for r in results] == [
        ("e1", 201, None),
        ("e2", 422, "enrolled_before_sponsor"),
        ("e3", 422, "unknown_sponsor"),
        ("e4", 201, None),
        ("e5", 201, None),
    ]
    for member, expected in [("B", 404), ("C", 404), ("D", 200), ("E", 200)]:
        found = await client.get(f"/v1/members/{member}", headers=program.headers)
        assert found.status_code == expected


async def test_a_move_event_under_a_sponsor_enrolled_later_is_refused(
    client: httpx.AsyncClient, program: Program
) -> None:
    batch = [
        enrolled_at_event("e1", "ROOT", None, "2026-11-01T00:00:00Z"),
        enrolled_at_event("e2", "A", "ROOT", "2026-11-01T00:00:00Z"),
        enrolled_at_event("e3", "LATE", "ROOT", "2026-11-05T00:00:00Z"),
        {
            "id": "e4",
            "type": "member.moved",
            "occurred_at": "2026-11-06T00:00:00Z",
            "data": {"id": "A", "sponsor_id": "LATE"},
        },
    ]
    response = await post_events(client, program, {"events": batch})
    results = response.json()["results"]
    assert [(r["status"], r.get("code")) for r in results] == [
        (201, None),
        (201, None),
        (201, None),
        (422, "enrolled_before_sponsor"),
    ]
    member = (await client.get("/v1/members/A", headers=program.headers)).json()
    assert member["sponsor_id"] == "ROOT"
