"""Plan versions through HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.flows import put_plan
from tests.conftest import Program, make_key

SPEC_PLAN: dict[str, Any] = {
    "effective_from": "2026-01-01T00:00:00Z",
    "categories": {
        "product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03", "0.02"]},
        "enrollment_fee": {"personal_rate": "0", "level_rates": ["0.20", "0.05", "0.04"]},
    },
    "compression": "none",
    "activity": {"min_personal_volume": "100.00", "window_days": 30},
    "max_payout_ratio": "0.60",
    "ranks": [],
}


async def test_put_plan_answers_the_version_in_canonical_form(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await client.put("/v1/plan", json=SPEC_PLAN, headers=program.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body.pop("created_at")
    assert body == {
        "version": 1,
        "effective_from": "2026-01-01T00:00:00Z",
        "categories": {
            "enrollment_fee": {"personal_rate": "0.00", "level_rates": ["0.20", "0.05", "0.04"]},
            "product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03", "0.02"]},
        },
        "compression": "none",
        "activity": {"min_personal_volume": "100.00", "window_days": 30},
        "max_payout_ratio": "0.60",
        "ranks": [],
        "unranked_levels": None,
        "leadership_pool": None,
        "payout": None,
    }


async def test_the_same_version_put_again_is_not_added_twice(
    client: httpx.AsyncClient, program: Program
) -> None:
    first = await client.put("/v1/plan", json=SPEC_PLAN, headers=program.headers)
    again = await client.put("/v1/plan", json=SPEC_PLAN, headers=program.headers)
    assert again.status_code == 200
    assert again.json() == first.json()
    versions = (await client.get("/v1/plan/versions", headers=program.headers)).json()
    assert [v["version"] for v in versions["items"]] == [1]


async def test_plan_in_force_now_and_at_a_time(client: httpx.AsyncClient, program: Program) -> None:
    await put_plan(
        client,
        program,
        effective_from="2026-01-01T00:00:00Z",
        categories={"product": {"personal_rate": "0.10", "level_rates": []}},
    )
    await put_plan(
        client,
        program,
        effective_from="2026-06-01T00:00:00Z",
        categories={"product": {"personal_rate": "0.20", "level_rates": []}},
    )
    await put_plan(
        client,
        program,
        effective_from="2999-01-01T00:00:00Z",
        categories={"product": {"personal_rate": "0.30", "level_rates": []}},
    )
    now = (await client.get("/v1/plan", headers=program.headers)).json()
    assert now["version"] == 2
    march = (
        await client.get("/v1/plan", params={"at": "2026-03-01T00:00:00Z"}, headers=program.headers)
    ).json()
    assert march["version"] == 1
    before = await client.get(
        "/v1/plan", params={"at": "2025-12-31T23:59:59Z"}, headers=program.headers
    )
    assert before.status_code == 404
    assert before.json()["code"] == "plan_not_found"


async def test_no_plan_yet_is_404(client: httpx.AsyncClient, program: Program) -> None:
    response = await client.get("/v1/plan", headers=program.headers)
    assert response.status_code == 404


async def test_versions_page(client: httpx.AsyncClient, program: Program) -> None:
    for month in range(1, 6):
        await put_plan(
            client,
            program,
            effective_from=f"2026-{month:02d}-01T00:00:00Z",
            categories={"product": {"personal_rate": f"0.0{month}", "level_rates": []}},
        )
    first = (await client.get("/v1/plan/versions?limit=2", headers=program.headers)).json()
    assert [v["version"] for v in first["items"]] == [1, 2]
    second = (
        await client.get(
            "/v1/plan/versions",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=program.headers,
        )
    ).json()
    third = (
        await client.get(
            "/v1/plan/versions",
            params={"limit": 2, "cursor": second["next_cursor"]},
            headers=program.headers,
        )
    ).json()
    assert [v["version"] for v in second["items"] + third["items"]] == [3, 4, 5]
    assert third["next_cursor"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"categories": {"product": {"personal_rate": "1.5", "level_rates": []}}},
            "categories.product.personal_rate",
        ),
        (
            {"categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.6", "0.5"]}}},
            "categories.product",
        ),
        (
            {"categories": {"Product": {"personal_rate": "0.10", "level_rates": []}}},
            "categories.Product",
        ),
        ({"categories": {}}, "categories"),
        ({"max_payout_ratio": "2"}, "max_payout_ratio"),
        (
            {"activity": {"min_personal_volume": "100.001", "window_days": 30}},
            "activity.min_personal_volume",
        ),
        (
            {"categories": {"product": {"personal_rate": "0.01", "level_rates": ["0.001"] * 51}}},
            "categories.product.level_rates",
        ),
    ],
)
async def test_invalid_plan_is_422_naming_the_field(
    client: httpx.AsyncClient, program: Program, change: dict[str, Any], field: str
) -> None:
    response = await client.put("/v1/plan", json={**SPEC_PLAN, **change}, headers=program.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] in {"invalid_plan", "validation_error"}
    locations = [".".join(error["loc"][1:]) for error in problem["errors"]]
    assert any(location.startswith(field) for location in locations), locations
    assert (await client.get("/v1/plan/versions", headers=program.headers)).json()["items"] == []


@pytest.mark.parametrize(
    "change",
    [
        {"categories": {"product": {"personal_rate": 0.1, "level_rates": []}}},
        {"categories": {"product": {"personal_rate": "0.10", "level_rates": [0.05]}}},
        {"max_payout_ratio": 0.6},
        {"activity": {"min_personal_volume": 100.0, "window_days": 30}},
        {"activity": {"min_personal_volume": "100.00", "window_days": 30.0}},
        {"activity": {"min_personal_volume": "100.00", "window_days": "30"}},
        {"compression": "static"},
        {"colour": "blue"},
        {"categories": {"product": {"personal_rate": "0.10", "level_rates": [], "cap": "1"}}},
        {"effective_from": "2026-01-01T00:00:00"},
        {"effective_from": None},
        {"ranks": [{"name": "gold", "min_personal_volume": 100}]},
        {"ranks": [{"name": "gold", "colour": "blue"}]},
        {"ranks": [{"name": ""}]},
        {"ranks": [{"name": "gold", "min_legs": {"count": "2", "rank": "gold"}}]},
        {"unranked_levels": "3"},
        {"leadership_pool": {"rate": 0.01}},
    ],
)
async def test_malformed_plan_is_422(
    client: httpx.AsyncClient, program: Program, change: dict[str, Any]
) -> None:
    response = await client.put("/v1/plan", json={**SPEC_PLAN, **change}, headers=program.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_only_admin_keys_change_the_plan(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for scope in ("read", "events:write"):
        headers = await make_key(sessions, program.id, scope)
        response = await client.put("/v1/plan", json=SPEC_PLAN, headers=headers)
        assert response.status_code == 403
    reader = await make_key(sessions, program.id, "read")
    await put_plan(client, program, categories=SPEC_PLAN["categories"])
    assert (await client.get("/v1/plan", headers=reader)).status_code == 200
