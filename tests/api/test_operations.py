"""Health, readiness, metrics, request ids and the exported OpenAPI document."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from service.cli import openapi_json
from tests.conftest import Program

ROOT = Path(__file__).resolve().parents[2]


async def test_readyz_answers_when_the_database_does(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient, program: Program) -> None:
    await client.get("/v1/members/NOBODY", headers=program.headers)
    text = (await client.get("/metrics")).text
    assert (
        'commissions_http_requests_total{method="GET",route="/v1/members/{member_id}",'
        'status="404"}' in text
    )
    assert "commissions_http_request_duration_seconds_bucket" in text


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) == 32


def test_openapi_file_is_the_apps() -> None:
    exported = (ROOT / "openapi" / "openapi.json").read_text()
    assert exported == openapi_json(), "run: commissions openapi --output openapi/openapi.json"


def test_openapi_documents_problems_and_auth() -> None:
    document = json.loads(openapi_json())
    enroll = document["paths"]["/v1/members"]["post"]
    assert {"201", "409", "422", "401", "403"} <= set(enroll["responses"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
