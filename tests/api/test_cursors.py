"""List cursors: signed by the program's key, bound to their list, checked before use."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from service.api.pagination import encode_cursor
from service.db import programs as program_sql
from tests.api.flows import cursor_key, enroll, enroll_chain, post_sale, put_plan
from tests.conftest import Program, make_program

PLAN = {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}


async def _tree(client: httpx.AsyncClient, program: Program) -> None:
    """ROOT - A - B - C - S, plus K1 and K2 under ROOT and the root OTHER; S sells three
    times (C earns three overrides); M moves three times; three plan versions."""
    for effective_from in ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]:
        await put_plan(client, program, effective_from=effective_from, categories=PLAN)
    later = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}
    await put_plan(client, program, effective_from="2026-03-01T00:00:00Z", categories=later)
    await enroll_chain(client, program, "ROOT", "A", "B", "C", "S")
    for member, sponsor in [("K1", "ROOT"), ("K2", "ROOT"), ("OTHER", None), ("M", "ROOT")]:
        await enroll(client, program, member, sponsor)
    for sponsor in ["A", "B", "K1"]:
        response = await client.post(
            "/v1/members/M/move", json={"sponsor_id": sponsor}, headers=program.headers
        )
        assert response.status_code == 200
    for i, at in enumerate(["2026-01-10", "2026-02-10", "2026-02-11"]):
        await post_sale(client, program, f"O-{i}", "S", "10.00", occurred_at=f"{at}T00:00:00Z")


async def _page(
    client: httpx.AsyncClient, program: Program, path: str, **params: Any
) -> httpx.Response:
    return await client.get(path, params=params, headers=program.headers)


async def _all_pages(
    client: httpx.AsyncClient, program: Program, path: str, **params: Any
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        extra: dict[str, str] = {} if cursor is None else {"cursor": cursor}
        response = await _page(client, program, path, **params, **extra)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def _first_cursor(
    client: httpx.AsyncClient, program: Program, path: str, **params: Any
) -> str:
    response = await _page(client, program, path, **params)
    cursor = response.json()["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


LISTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/members/S/upline", {"levels": 1}),
    ("/v1/members/ROOT/downline", {"limit": 2}),
    ("/v1/members/ROOT/downline", {"limit": 1, "max_depth": 1}),
    ("/v1/members/M/moves", {"limit": 1}),
    ("/v1/members/C/commissions", {"limit": 1}),
    ("/v1/members/C/commissions", {"limit": 1, "period": "2026-02"}),
    ("/v1/plan/versions", {"limit": 1}),
]


async def test_every_list_pages_through_with_its_cursors(
    client: httpx.AsyncClient, program: Program
) -> None:
    await _tree(client, program)

    def ids(pages: list[list[dict[str, Any]]], field: str) -> list[list[Any]]:
        return [[item[field] for item in page] for page in pages]

    upline = await _all_pages(client, program, "/v1/members/S/upline", levels=1)
    assert ids(upline, "id") == [["C"], ["B"], ["A"], ["ROOT"]]
    downline = await _all_pages(client, program, "/v1/members/ROOT/downline", limit=2)
    # Depth-first, recruits in the order they were placed; M sits under K1 now.
    assert ids(downline, "id") == [["A", "B"], ["C", "S"], ["K1", "M"], ["K2"]]
    shallow = await _all_pages(client, program, "/v1/members/ROOT/downline", limit=1, max_depth=1)
    assert ids(shallow, "id") == [["A"], ["K1"], ["K2"]]
    moves = await _all_pages(client, program, "/v1/members/M/moves", limit=1)
    assert ids(moves, "to_sponsor_id") == [["A"], ["B"], ["K1"]]
    lines = await _all_pages(client, program, "/v1/members/C/commissions", limit=1)
    assert ids(lines, "sale_id") == [["O-0"], ["O-1"], ["O-2"]]
    february = await _all_pages(
        client, program, "/v1/members/C/commissions", limit=1, period="2026-02"
    )
    assert ids(february, "sale_id") == [["O-1"], ["O-2"]]
    versions = await _all_pages(client, program, "/v1/plan/versions", limit=1)
    assert ids(versions, "version") == [[1], [2], [3]]


def _unsigned(*values: Any) -> str:
    """A cursor as they were before they were signed: base64url of the JSON array."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _flip(cursor: str, index: int) -> str:
    """The cursor with one character changed (inside the tag: every bit of it counts)."""
    return cursor[:index] + ("A" if cursor[index] != "A" else "B") + cursor[index + 1 :]


@pytest.mark.parametrize(("path", "params"), LISTS)
async def test_forged_and_broken_cursors_are_422_before_they_are_read(
    client: httpx.AsyncClient, program: Program, path: str, params: dict[str, Any]
) -> None:
    await _tree(client, program)
    given = await _first_cursor(client, program, path, **params)
    raw = base64.urlsafe_b64decode(given + "=" * (-len(given) % 4))
    tag, payload = raw[:16], raw[16:]
    forged_payload = payload.replace(b"]", b',"x"]')
    forged = [
        _unsigned("downline", "ROOT", "K1"),  # the old, unsigned form
        encode_cursor(b"k" * 32, *json.loads(payload)),  # signed with another key
        base64.urlsafe_b64encode(tag + forged_payload).decode().rstrip("="),
        _flip(given, 5),
        given[:-2],
        given + "\x00",
        "\x00",
        given[:10] + "\x00" + given[10:],
        given + "=",
        given + "+/",
        "",
        "A",
        "AAAA",
    ]
    for cursor in forged:
        response = await _page(client, program, path, **params, cursor=cursor)
        assert response.status_code == 422, (cursor, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_cursor", cursor


async def test_a_cursor_only_continues_the_list_that_gave_it_out(
    client: httpx.AsyncClient, program: Program
) -> None:
    await _tree(client, program)
    upline = await _first_cursor(client, program, "/v1/members/S/upline", levels=1)
    downline = await _first_cursor(client, program, "/v1/members/ROOT/downline", limit=1)
    shallow = await _first_cursor(
        client, program, "/v1/members/ROOT/downline", limit=1, max_depth=2
    )
    moves = await _first_cursor(client, program, "/v1/members/M/moves", limit=1)
    lines = await _first_cursor(client, program, "/v1/members/C/commissions", limit=1)
    versions = await _first_cursor(client, program, "/v1/plan/versions", limit=1)
    misused: list[tuple[str, dict[str, Any]]] = [
        ("/v1/members/C/upline", {"cursor": upline}),  # another member
        ("/v1/members/S/downline", {"cursor": upline}),  # another list
        ("/v1/members/A/downline", {"cursor": downline}),
        ("/v1/members/ROOT/upline", {"cursor": downline}),
        ("/v1/members/ROOT/downline", {"cursor": downline, "max_depth": 2}),  # other depth
        ("/v1/members/ROOT/downline", {"cursor": shallow}),
        ("/v1/members/ROOT/downline", {"cursor": shallow, "max_depth": 3}),
        ("/v1/members/S/moves", {"cursor": moves}),
        ("/v1/members/M/commissions", {"cursor": moves}),
        ("/v1/members/S/commissions", {"cursor": lines}),
        ("/v1/members/C/commissions", {"cursor": lines, "period": "2026-01"}),
        ("/v1/plan/versions", {"cursor": lines}),
        ("/v1/members/M/moves", {"cursor": versions}),
    ]
    for path, params in misused:
        response = await _page(client, program, path, **params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["code"] == "invalid_cursor", (path, params)
    response = await _page(
        client, program, "/v1/members/ROOT/downline", max_depth=2, cursor=shallow
    )
    assert [item["id"] for item in response.json()["items"]] == ["B", "K1", "M", "K2"]


async def test_a_cursor_of_another_program_is_422(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], program: Program
) -> None:
    other = await make_program(sessions, "other")
    await _tree(client, program)
    await _tree(client, other)
    for path, params in LISTS:
        cursor = await _first_cursor(client, program, path, **params)
        response = await _page(client, other, path, **params, cursor=cursor)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["code"] == "invalid_cursor"
        assert (await _page(client, program, path, **params, cursor=cursor)).status_code == 200


async def test_a_signed_cursor_must_name_an_item_of_its_list(
    connection: AsyncConnection, client: httpx.AsyncClient, program: Program
) -> None:
    await _tree(client, program)
    key = await cursor_key(connection, program)
    line_of_s = (
        await connection.execute(
            text(
                "SELECT min(line_id) FROM commission_lines"
                " WHERE program_id = :p AND earner_id = 'S'"
            ),
            {"p": program.id},
        )
    ).scalar_one()
    move_of_m = (
        await connection.execute(
            text("SELECT min(move_id) FROM member_moves WHERE program_id = :p"),
            {"p": program.id},
        )
    ).scalar_one()
    signed: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = [
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, "NOBODY")),
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, "OTHER")),  # not below
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, "ROOT")),  # itself
        ("/v1/members/ROOT/downline", {"max_depth": 1}, ("downline", "ROOT", 1, "B")),  # deeper
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, "K1\x00")),
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, 7)),
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, "x" * 65)),
        ("/v1/members/ROOT/downline", {"max_depth": 1}, ("downline", "ROOT", True, "A")),
        ("/v1/members/S/upline", {}, ("upline", "S", 2, "NOBODY")),
        ("/v1/members/S/upline", {}, ("upline", "S", 2, "A")),  # A is level 3
        ("/v1/members/S/upline", {}, ("upline", "S", 5, "ROOT")),  # past the chain
        ("/v1/members/S/upline", {}, ("upline", "S", 0, "C")),
        ("/v1/members/S/upline", {}, ("upline", "S", 1)),
        ("/v1/members/M/moves", {}, ("moves", "M", move_of_m + 100)),
        ("/v1/members/M/moves", {}, ("moves", "M", 0)),
        ("/v1/members/S/moves", {}, ("moves", "S", move_of_m)),  # a move of M
        ("/v1/members/C/commissions", {}, ("commissions", "C", None, line_of_s)),
        ("/v1/members/C/commissions", {}, ("commissions", "C", None, 10**30)),
        ("/v1/plan/versions", {}, ("plan_versions", 4)),
        ("/v1/plan/versions", {}, ("plan_versions", 2**31)),
        ("/v1/plan/versions", {}, ("plan_versions", 1.0)),
        ("/v1/plan/versions", {}, ("plan_versions",)),
    ]
    for path, params, position in signed:
        cursor = encode_cursor(key, *position)
        response = await _page(client, program, path, **params, cursor=cursor)
        assert response.status_code == 422, (position, response.text)
        assert response.json()["code"] == "invalid_cursor", position
    # The same positions, naming items of the list, continue it.
    continued: list[tuple[str, dict[str, Any], tuple[Any, ...], list[str]]] = [
        ("/v1/members/ROOT/downline", {}, ("downline", "ROOT", None, "K1"), ["M", "K2"]),
        ("/v1/members/S/upline", {}, ("upline", "S", 3, "A"), ["ROOT"]),
    ]
    for path, params, position, expected in continued:
        response = await _page(
            client, program, path, **params, cursor=encode_cursor(key, *position)
        )
        assert [item["id"] for item in response.json()["items"]] == expected


async def test_a_move_out_of_the_team_ends_its_cursor(
    client: httpx.AsyncClient, program: Program
) -> None:
    await _tree(client, program)
    cursor = await _first_cursor(client, program, "/v1/members/ROOT/downline", limit=1)
    response = await client.post(
        "/v1/members/A/move", json={"sponsor_id": "OTHER"}, headers=program.headers
    )
    assert response.status_code == 200
    response = await _page(client, program, "/v1/members/ROOT/downline", cursor=cursor)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


async def test_each_program_has_its_own_random_key_that_is_never_shown(
    connection: AsyncConnection, sessions: async_sessionmaker[AsyncSession], program: Program
) -> None:
    other = await make_program(sessions, "other")
    keys = {await cursor_key(connection, p) for p in (program, other)}
    assert len(keys) == 2
    assert {len(key) for key in keys} == {32}
    async with sessions() as session:
        row = await program_sql.get_program(session, program.id)
    assert row is not None
    assert row.cursor_key in keys
    assert "cursor_key" not in repr(row)
