from __future__ import annotations

import httpx

from tests.conftest import Program


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_enroll_and_get(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.post(
        "/v1/members", json={"id": "M1", "sponsor_id": None}, headers=program.headers
    )
    assert response.status_code == 201, response.text
    response = await client.get("/v1/members/M1", headers=program.headers)
    assert response.status_code == 200, response.text
    assert response.json()["downline_size"] == 0
