"""The sponsor genealogy through HTTP: enrolment, moves, upline and downline walks."""

from __future__ import annotations

import dataclasses
import random

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import members as member_sql
from tests.api.flows import insert_tree
from tests.conftest import Program


async def enroll(
    client: httpx.AsyncClient,
    program: Program,
    member_id: str,
    sponsor_id: str | None,
    **extra: object,
) -> httpx.Response:
    return await client.post(
        "/v1/members",
        json={"id": member_id, "sponsor_id": sponsor_id, **extra},
        headers=program.headers,
    )


async def test_enroll_returns_the_member(client: httpx.AsyncClient, program: Program) -> None:
    root = await enroll(client, program, "ROOT", None, enrolled_at="2026-01-01T00:00:00Z")
    assert root.status_code == 201
    response = await enroll(
        client, program, "M1", "ROOT", enrolled_at="2026-11-03T10:00:00Z", name="Ann"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == "M1"
    assert body["sponsor_id"] == "ROOT"
    assert body["enrolled_at"] == "2026-11-03T10:00:00Z"
    assert body["status"] == "active"
    assert body["name"] == "Ann"
    assert body["rank"] is None


async def test_identical_repost_returns_the_member(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enroll(client, program, "ROOT", None, enrolled_at="2026-01-01T00:00:00Z")
    first = await enroll(client, program, "M1", "ROOT", enrolled_at="2026-11-03T10:00:00Z")
    again = await enroll(client, program, "M1", "ROOT", enrolled_at="2026-11-03T10:00:00Z")
    assert again.status_code == 200
    assert again.json() == first.json()


async def test_enrolment_retry_after_a_move_is_still_the_same_enrolment(
    client: httpx.AsyncClient, program: Program
) -> None:
    for member, sponsor in [("ROOT", None), ("A", "ROOT"), ("B", "ROOT"), ("M1", "A")]:
        await enroll(client, program, member, sponsor)
    await client.post("/v1/members/M1/move", json={"sponsor_id": "B"}, headers=program.headers)
    again = await enroll(client, program, "M1", "A")
    assert again.status_code == 200
    assert again.json()["sponsor_id"] == "B"


async def test_different_enrolment_under_a_taken_id_is_409(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enroll(client, program, "ROOT", None)
    await enroll(client, program, "OTHER", None)
    await enroll(client, program, "M1", "ROOT")
    response = await enroll(client, program, "M1", "OTHER")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "member_exists"


async def test_unknown_sponsor_is_422_and_writes_nothing(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await enroll(client, program, "M1", "NOBODY")
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_sponsor"
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 404


async def test_terminated_sponsor_cannot_enroll(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enroll(client, program, "ROOT", None)
    await client.patch("/v1/members/ROOT", json={"status": "terminated"}, headers=program.headers)
    response = await enroll(client, program, "M1", "ROOT")
    assert response.status_code == 422
    assert response.json()["code"] == "sponsor_terminated"


@pytest.mark.parametrize(
    "body",
    [
        {"id": "", "sponsor_id": None},
        {"id": "x" * 65, "sponsor_id": None},
        {"id": "has space", "sponsor_id": None},
        {"id": "é", "sponsor_id": None},
        {"id": 12, "sponsor_id": None},
        {"sponsor_id": None},
        {"id": "M1"},
        {"id": "M1", "sponsor_id": None, "enrolled_at": "2026-11-03T10:00:00"},
        {"id": "M1", "sponsor_id": None, "enrolled_at": "yesterday"},
        {"id": "M1", "sponsor_id": None, "colour": "blue"},
        {"id": "M1", "sponsor_id": None, "name": ""},
        [],
        "M1",
    ],
)
async def test_invalid_enrolment_is_422_validation_error(
    client: httpx.AsyncClient, program: Program, body: object
) -> None:
    response = await client.post("/v1/members", json=body, headers=program.headers)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["status"] == 422
    assert problem["errors"]


async def test_malformed_json_is_400(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.post(
        "/v1/members",
        content=b'{"id": "M1", ',
        headers={**program.headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_member_id_alphabet(client: httpx.AsyncClient, program: Program) -> None:
    member_id = "Az09._:-" + "x" * 56
    assert (await enroll(client, program, member_id, None)).status_code == 201
    response = await client.get(f"/v1/members/{member_id}", headers=program.headers)
    assert response.json()["id"] == member_id


async def test_patch_status_and_name(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "M1", None, name="Ann")
    response = await client.patch(
        "/v1/members/M1", json={"status": "inactive"}, headers=program.headers
    )
    assert response.status_code == 200
    assert response.json()["status"] == "inactive"
    assert response.json()["name"] == "Ann"
    response = await client.patch("/v1/members/M1", json={"name": None}, headers=program.headers)
    assert response.json()["name"] is None
    assert response.json()["status"] == "inactive"


async def test_termination_is_final(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "M1", None)
    await client.patch("/v1/members/M1", json={"status": "terminated"}, headers=program.headers)
    response = await client.patch(
        "/v1/members/M1", json={"status": "active"}, headers=program.headers
    )
    assert response.status_code == 409
    assert response.json()["code"] == "member_terminated"


@pytest.mark.parametrize("body", [{"status": "retired"}, {"rank": "gold"}, {"name": 5}])
async def test_invalid_patch_is_422(
    client: httpx.AsyncClient, program: Program, body: dict[str, object]
) -> None:
    await enroll(client, program, "M1", None)
    response = await client.patch("/v1/members/M1", json=body, headers=program.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_patch_unknown_member_is_404(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.patch("/v1/members/NOBODY", json={"name": "x"}, headers=program.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"


async def test_get_counts_direct_recruits_and_whole_downline(
    client: httpx.AsyncClient, program: Program
) -> None:
    # ROOT -> A, B ; A -> A1, A2 ; A1 -> A11
    for member, sponsor in [
        ("ROOT", None),
        ("A", "ROOT"),
        ("B", "ROOT"),
        ("A1", "A"),
        ("A2", "A"),
        ("A11", "A1"),
    ]:
        await enroll(client, program, member, sponsor)
    root = (await client.get("/v1/members/ROOT", headers=program.headers)).json()
    assert (root["direct_recruits"], root["downline_size"]) == (2, 5)
    a = (await client.get("/v1/members/A", headers=program.headers)).json()
    assert (a["direct_recruits"], a["downline_size"]) == (2, 3)
    leaf = (await client.get("/v1/members/A11", headers=program.headers)).json()
    assert (leaf["direct_recruits"], leaf["downline_size"]) == (0, 0)


async def test_move_changes_sponsor_and_carries_the_team(
    client: httpx.AsyncClient, program: Program
) -> None:
    # B is enrolled before A: a member only moves under a sponsor enrolled no later.
    for member, sponsor in [("ROOT", None), ("B", "ROOT"), ("A", "ROOT"), ("A1", "A")]:
        await enroll(client, program, member, sponsor)
    response = await client.post(
        "/v1/members/A/move", json={"sponsor_id": "B"}, headers=program.headers
    )
    assert response.status_code == 200
    assert response.json()["sponsor_id"] == "B"
    upline = (await client.get("/v1/members/A1/upline", headers=program.headers)).json()
    assert [(m["id"], m["level"]) for m in upline["items"]] == [("A", 1), ("B", 2), ("ROOT", 3)]


async def test_moves_are_kept_in_history(client: httpx.AsyncClient, program: Program) -> None:
    for member, sponsor in [("ROOT", None), ("A", "ROOT"), ("B", "ROOT"), ("M", "A")]:
        await enroll(client, program, member, sponsor)
    await client.post("/v1/members/M/move", json={"sponsor_id": "B"}, headers=program.headers)
    await client.post("/v1/members/M/move", json={"sponsor_id": "ROOT"}, headers=program.headers)
    # moving to the sponsor the member already has changes nothing and records nothing
    await client.post("/v1/members/M/move", json={"sponsor_id": "ROOT"}, headers=program.headers)
    response = await client.get("/v1/members/M/moves", headers=program.headers)
    assert response.status_code == 200
    moves = response.json()["items"]
    assert [(m["from_sponsor_id"], m["to_sponsor_id"]) for m in moves] == [
        ("A", "B"),
        ("B", "ROOT"),
    ]
    assert moves[0]["moved_at"] <= moves[1]["moved_at"]


async def test_move_history_is_append_only(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    for member, sponsor in [("ROOT", None), ("A", "ROOT"), ("M", "ROOT")]:
        await enroll(client, program, member, sponsor)
    await client.post("/v1/members/M/move", json={"sponsor_id": "A"}, headers=program.headers)
    with pytest.raises(Exception, match="append-only"):
        async with connection.begin_nested():
            await connection.execute(text("DELETE FROM member_moves"))


@pytest.mark.parametrize(
    ("mover", "new_sponsor"),
    [("A", "A"), ("A", "A1"), ("A", "A11"), ("ROOT", "A11")],
)
async def test_move_that_would_make_a_cycle_is_409(
    client: httpx.AsyncClient, program: Program, mover: str, new_sponsor: str
) -> None:
    for member, sponsor in [("ROOT", None), ("A", "ROOT"), ("A1", "A"), ("A11", "A1")]:
        await enroll(client, program, member, sponsor)
    response = await client.post(
        f"/v1/members/{mover}/move", json={"sponsor_id": new_sponsor}, headers=program.headers
    )
    assert response.status_code == 409
    assert response.json()["code"] == "genealogy_cycle"
    member = (await client.get(f"/v1/members/{mover}", headers=program.headers)).json()
    assert member["sponsor_id"] == {"A": "ROOT", "ROOT": None}[mover]
    history = (await client.get(f"/v1/members/{mover}/moves", headers=program.headers)).json()
    assert history["items"] == []


async def test_move_to_unknown_sponsor_is_422(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "M", None)
    response = await client.post(
        "/v1/members/M/move", json={"sponsor_id": "NOBODY"}, headers=program.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_sponsor"


async def test_move_unknown_member_is_404(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "ROOT", None)
    response = await client.post(
        "/v1/members/NOBODY/move", json={"sponsor_id": "ROOT"}, headers=program.headers
    )
    assert response.status_code == 404


async def test_move_to_null_makes_a_root(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "ROOT", None)
    await enroll(client, program, "M", "ROOT")
    response = await client.post(
        "/v1/members/M/move", json={"sponsor_id": None}, headers=program.headers
    )
    assert response.json()["sponsor_id"] is None
    root = (await client.get("/v1/members/ROOT", headers=program.headers)).json()
    assert root["downline_size"] == 0


async def test_upline_of_a_root_is_empty(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "ROOT", None)
    response = await client.get("/v1/members/ROOT/upline", headers=program.headers)
    assert response.json() == {"items": [], "next_cursor": None}


async def test_thousand_deep_chain(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    # C0 <- C1 <- ... <- C999: C999 is 999 levels below C0.
    chain = [(f"C{i}", f"C{i - 1}" if i else None) for i in range(1000)]
    await insert_tree(connection, program.id, chain)

    response = await client.get(
        "/v1/members/C999/upline", params={"levels": 1000}, headers=program.headers
    )
    body = response.json()
    assert [(m["id"], m["level"]) for m in body["items"]] == [
        (f"C{999 - level}", level) for level in range(1, 1000)
    ]
    assert body["next_cursor"] is None

    # Paged 300 at a time the upline is the same 999 members, nearest first.
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"levels": 300}
        if cursor:
            params["cursor"] = cursor
        page = (
            await client.get("/v1/members/C999/upline", params=params, headers=program.headers)
        ).json()
        seen += [(m["id"], m["level"]) for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(f"C{999 - level}", level) for level in range(1, 1000)]

    response = await client.get(
        "/v1/members/C0/downline", params={"limit": 1000}, headers=program.headers
    )
    body = response.json()
    assert [(m["id"], m["level"]) for m in body["items"]] == [
        (f"C{level}", level) for level in range(1, 1000)
    ]
    assert body["next_cursor"] is None

    response = await client.get(
        "/v1/members/C0/downline", params={"max_depth": 10}, headers=program.headers
    )
    assert [m["id"] for m in response.json()["items"]] == [f"C{i}" for i in range(1, 11)]

    member = (await client.get("/v1/members/C0", headers=program.headers)).json()
    assert (member["direct_recruits"], member["downline_size"]) == (1, 999)

    # A move at the bottom of the chain that would close it into a ring is refused.
    response = await client.post(
        "/v1/members/C0/move", json={"sponsor_id": "C999"}, headers=program.headers
    )
    assert response.status_code == 409


async def test_ten_thousand_member_tree_pages_add_up_to_the_team(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    rng = random.Random(20261122)
    edges: list[tuple[str, str | None]] = [("T0", None)]
    depth = {"T0": 0}
    for i in range(1, 10_000):
        # Preferential attachment: a few members recruit many, most recruit no one.
        sponsor = edges[int(rng.random() ** 3 * i)][0]
        edges.append((f"T{i}", sponsor))
        depth[f"T{i}"] = depth[sponsor] + 1
    await insert_tree(connection, program.id, edges)

    seen: list[tuple[int, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 777}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(
            "/v1/members/T0/downline", params=params, headers=program.headers
        )
        assert response.status_code == 200
        page = response.json()
        seen += [(m["level"], m["id"]) for m in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Depth-first: each member followed by their team (a tree loaded behind the service's
    # back is labelled with recruits in id order).
    children: dict[str, list[str]] = {}
    for recruit, recruiter in edges[1:]:
        children.setdefault(str(recruiter), []).append(recruit)
    expected: list[tuple[int, str]] = []
    stack = sorted(children["T0"], reverse=True)
    while stack:
        visited = stack.pop()
        expected.append((depth[visited], visited))
        stack.extend(sorted(children.get(visited, []), reverse=True))

    # The first two levels only, paged: the same order, the deeper members left out.
    shallow: list[tuple[int, str]] = []
    cursor = None
    while True:
        params = {"limit": 50, "max_depth": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/v1/members/T0/downline", params=params, headers=program.headers)
        ).json()
        shallow += [(m["level"], m["id"]) for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert shallow == [(level, member) for level, member in expected if level <= 2]
    assert len(shallow) > 100
    assert len(seen) == 9_999
    assert len(set(seen)) == 9_999
    assert seen == expected
    assert pages == 13  # ceil(9,999 / 777)

    member = (await client.get("/v1/members/T0", headers=program.headers)).json()
    assert member["downline_size"] == 9_999


async def test_downline_cursor_is_checked(client: httpx.AsyncClient, program: Program) -> None:
    await enroll(client, program, "ROOT", None)
    await enroll(client, program, "OTHER", None)
    for i in range(3):
        await enroll(client, program, f"K{i}", "ROOT")
    page = (await client.get("/v1/members/ROOT/downline?limit=1", headers=program.headers)).json()
    cursor = page["next_cursor"]
    assert cursor is not None
    for bad in ["garbage", "", "e30", cursor + "x"]:
        response = await client.get(
            "/v1/members/ROOT/downline", params={"cursor": bad}, headers=program.headers
        )
        assert response.status_code == 422, bad
    # A cursor of one member's downline does not continue another member's.
    response = await client.get(
        "/v1/members/OTHER/downline", params={"cursor": cursor}, headers=program.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "max_depth=0",
        "max_depth=100001",
        "max_depth=-1",
        "cursor=" + "x" * 600,
    ],
)
async def test_downline_bounds_are_422(
    client: httpx.AsyncClient, program: Program, query: str
) -> None:
    await enroll(client, program, "ROOT", None)
    response = await client.get(f"/v1/members/ROOT/downline?{query}", headers=program.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize("query", ["levels=0", "levels=1001", "levels=x"])
async def test_upline_bounds_are_422(
    client: httpx.AsyncClient, program: Program, query: str
) -> None:
    await enroll(client, program, "ROOT", None)
    response = await client.get(f"/v1/members/ROOT/upline?{query}", headers=program.headers)
    assert response.status_code == 422


async def test_walks_of_unknown_member_are_404(client: httpx.AsyncClient, program: Program) -> None:
    for path in ["upline", "downline", "moves"]:
        response = await client.get(f"/v1/members/NOBODY/{path}", headers=program.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"


def test_member_rows_are_read_by_position_in_the_order_of_their_fields() -> None:
    # every member query selects member_sql._COLUMNS first, in this order, and _member reads
    # the row by position: the dataclass must name them in the same order
    assert [f.name for f in dataclasses.fields(member_sql.MemberRow)] == [
        column.name for column in member_sql._COLUMNS
    ]


async def test_a_recruit_enrolled_before_the_sponsor_is_422_and_writes_nothing(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enroll(client, program, "ROOT", None, enrolled_at="2026-11-03T10:00:00Z")
    response = await enroll(client, program, "M1", "ROOT", enrolled_at="2026-11-03T09:59:59Z")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "enrolled_before_sponsor"
    assert problem["enrolled_at"] == "2026-11-03T09:59:59+00:00"
    assert problem["sponsor_enrolled_at"] == "2026-11-03T10:00:00+00:00"
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 404
    root = (await client.get("/v1/members/ROOT", headers=program.headers)).json()
    assert root["downline_size"] == 0


async def test_a_recruit_enrolled_at_the_sponsors_instant_is_fine(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enroll(client, program, "ROOT", None, enrolled_at="2026-11-03T10:00:00Z")
    response = await enroll(client, program, "M1", "ROOT", enrolled_at="2026-11-03T11:00:00+01:00")
    assert response.status_code == 201
    assert response.json()["enrolled_at"] == "2026-11-03T10:00:00Z"


async def test_enrolled_at_defaults_to_now_which_is_before_a_sponsor_enrolled_in_the_future(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enroll(client, program, "ROOT", None, enrolled_at="2999-01-01T00:00:00Z")
    response = await enroll(client, program, "M1", "ROOT")
    assert response.status_code == 422
    assert response.json()["code"] == "enrolled_before_sponsor"
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 404


async def test_a_move_under_a_sponsor_enrolled_later_is_422_and_writes_nothing(
    client: httpx.AsyncClient, program: Program
) -> None:
    # A was enrolled on the 1st, LATE on the 2nd: A cannot go under LATE, but LATE can go
    # under A, and A under LATE's sponsor ROOT, enrolled on the 1st too (the same instant).
    for member, sponsor, at in [
        ("ROOT", None, "2026-11-01T00:00:00Z"),
        ("A", "ROOT", "2026-11-01T00:00:00Z"),
        ("LATE", "ROOT", "2026-11-02T00:00:00Z"),
    ]:
        assert (await enroll(client, program, member, sponsor, enrolled_at=at)).status_code == 201
    response = await client.post(
        "/v1/members/A/move", json={"sponsor_id": "LATE"}, headers=program.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "enrolled_before_sponsor"
    member = (await client.get("/v1/members/A", headers=program.headers)).json()
    assert member["sponsor_id"] == "ROOT"
    history = (await client.get("/v1/members/A/moves", headers=program.headers)).json()
    assert history["items"] == []
    upline = (await client.get("/v1/members/A/upline", headers=program.headers)).json()
    assert [m["id"] for m in upline["items"]] == ["ROOT"]

    response = await client.post(
        "/v1/members/LATE/move", json={"sponsor_id": "A"}, headers=program.headers
    )
    assert response.status_code == 200
    assert response.json()["sponsor_id"] == "A"
