"""Keys, scopes, and the wall between programs."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from service.services import programs
from tests.conftest import Program, make_key, make_program


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer cmk_acme_0000000000000000000000000000000000000000",
        "Bearer not-a-key",
        "Bearer cmk_acme_",
    ],
)
async def test_missing_or_invalid_key_is_401(
    client: httpx.AsyncClient, program: Program, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.get("/v1/members/M1", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_key_of_a_program_is_stored_only_as_hash(
    connection: AsyncConnection, program: Program
) -> None:
    rows = (await connection.execute(text("SELECT key_hash FROM api_keys"))).scalars().all()
    assert program.admin_key not in rows
    assert programs.hash_key(program.admin_key) in rows
    assert program.admin_key.startswith("cmk_acme_")


async def test_revoked_key_is_401(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = await make_key(sessions, program.id, "read")
    key_id = headers["Authorization"].split("_")[-1][:8]
    assert (await client.get("/v1/members/X", headers=headers)).status_code == 404
    async with sessions() as session, session.begin():
        await programs.revoke_api_key(session, program_id=program.id, key_id=key_id)
    assert (await client.get("/v1/members/X", headers=headers)).status_code == 401


async def test_scopes(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    reader = await make_key(sessions, program.id, "read")
    writer = await make_key(sessions, program.id, "events:write")
    body = {"id": "M1", "sponsor_id": None}

    response = await client.post("/v1/members", json=body, headers=reader)
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert (await client.get("/v1/members/M1", headers=reader)).status_code == 404

    assert (await client.post("/v1/members", json=body, headers=writer)).status_code == 201
    response = await client.get("/v1/members/M1", headers=writer)
    assert response.status_code == 403

    assert (await client.get("/v1/members/M1", headers=reader)).status_code == 200
    # admin may do everything
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 200


async def test_a_program_sees_nothing_of_another(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = await make_program(sessions, "globex")
    for member, sponsor in [("ROOT", None), ("A", "ROOT")]:
        response = await client.post(
            "/v1/members", json={"id": member, "sponsor_id": sponsor}, headers=program.headers
        )
        assert response.status_code == 201

    for path in [
        "/v1/members/A",
        "/v1/members/A/upline",
        "/v1/members/ROOT/downline",
        "/v1/members/A/moves",
    ]:
        response = await client.get(path, headers=other.headers)
        assert response.status_code == 404, path
        assert response.json()["code"] == "member_not_found"
        assert "sponsor_id" not in response.text
    for method, path, body in [
        ("PATCH", "/v1/members/A", {"status": "inactive"}),
        ("POST", "/v1/members/A/move", {"sponsor_id": None}),
    ]:
        response = await client.request(method, path, json=body, headers=other.headers)
        assert response.status_code == 404, path
    # Another program's member is no sponsor here either.
    response = await client.post(
        "/v1/members", json={"id": "B", "sponsor_id": "ROOT"}, headers=other.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_sponsor"
    # The same id can exist in both programs, independently.
    response = await client.post(
        "/v1/members", json={"id": "A", "sponsor_id": None}, headers=other.headers
    )
    assert response.status_code == 201
    mine = (await client.get("/v1/members/A", headers=program.headers)).json()
    assert mine["sponsor_id"] == "ROOT"
    # Nothing above changed program A's data.
    root = (await client.get("/v1/members/ROOT", headers=program.headers)).json()
    assert root["downline_size"] == 1


async def test_key_cannot_be_replayed_against_another_program_id(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await make_program(sessions, "globex")
    secret = program.admin_key.removeprefix("cmk_acme_")
    forged = {"Authorization": f"Bearer cmk_globex_{secret}"}
    assert (await client.get("/v1/members/A", headers=forged)).status_code == 401


async def test_body_over_the_bound_is_413(client: httpx.AsyncClient, program: Program) -> None:
    big = b'{"id": "M1", "sponsor_id": null, "name": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/members", content=big, headers={**program.headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_unknown_route_and_method_are_problems(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await client.get("/v1/nothing", headers=program.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    response = await client.delete("/v1/members/M1", headers=program.headers)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_program_ids_and_settings_are_validated(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from service.errors import ProgramExists, ValidationFailed

    await make_program(sessions, "valid-id-1")
    with pytest.raises(ProgramExists):
        await make_program(sessions, "valid-id-1")
    for bad_id in ["", "Upper", "under_score", "-lead", "x" * 64]:
        with pytest.raises(ValidationFailed):
            await make_program(sessions, bad_id)
    with pytest.raises(ValidationFailed):
        await make_program(sessions, "p2", currency="XYZ")
    with pytest.raises(ValidationFailed):
        await make_program(sessions, "p3", timezone="Mars/Olympus")
