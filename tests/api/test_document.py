"""What the OpenAPI document says about errors, and the rules it states: each status an
operation answers is documented once, as application/problem+json with the codes it can
carry; a 405 names every method of the path; the patterns of the document refuse nothing
that the service takes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from service.api.reports import PERIOD_PATTERN
from service.cli import openapi_json
from service.domain.money import MoneyError, parse_money
from service.domain.periods import PeriodError, parse_period
from service.intake.requests import INSTANT_YEAR_PATTERN, MONEY_PATTERN, Instant
from tests.conftest import Program

DOCUMENT: dict[str, Any] = json.loads(openapi_json())
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]
DATABASE_FREE = {"/healthz", "/readyz", "/metrics"}


def codes(operation: dict[str, Any]) -> dict[str, list[str]]:
    """The problem codes of each error status of an operation."""
    found = {}
    for status, response in operation["responses"].items():
        if status[0] in "45":
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema["properties"]["status"] == {"const": int(status)}
            found[status] = schema["properties"]["code"]["enum"]
    return found


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_error_is_a_problem_and_only_that(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for status, response in operation["responses"].items():
        if status[0] in "45":
            assert list(response["content"]) == ["application/problem+json"], (status, path)
            problem = response["content"]["application/problem+json"]["schema"]
            assert problem["allOf"] == [{"$ref": "#/components/schemas/Problem"}]


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_every_operation_documents_the_problems_of_its_kind(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    found = codes(operation)
    if path not in DATABASE_FREE:
        if operation.get("security") == []:  # a store's webhook: its platform's signature
            assert found["401"] == ["invalid_signature"]
            assert "403" not in found
        else:
            assert found["401"] == ["unauthorized"]
            assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
            assert found["403"] == ["insufficient_scope"]
        assert found["503"] == ["database_unavailable", "retry_later"]
        assert operation["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    if "requestBody" in operation:
        assert found["400"] == ["malformed_json"]
        assert "payload_too_large" in found["413"]
        assert {"duplicate_key", "validation_error"} <= set(found["422"])
    if "requestBody" in operation or operation.get("parameters"):
        assert "validation_error" in found["422"]


def test_an_enrolment_documents_each_status_with_its_codes() -> None:
    assert codes(DOCUMENT["paths"]["/v1/members"]["post"]) == {
        "400": ["malformed_json"],
        "401": ["unauthorized"],
        "403": ["insufficient_scope"],
        "409": ["idempotency_conflict", "member_exists", "referral_code_taken"],
        "413": ["payload_too_large"],
        "422": [
            "duplicate_key",
            "enrolled_before_sponsor",
            "sponsor_terminated",
            "unknown_sponsor",
            "validation_error",
        ],
        "503": ["database_unavailable", "retry_later"],
    }


def test_the_health_routes_document_what_they_answer() -> None:
    paths = DOCUMENT["paths"]
    assert codes(paths["/readyz"]["get"]) == {"503": ["database_unavailable"]}
    assert codes(paths["/healthz"]["get"]) == {}


def test_events_document_a_single_event_apart_from_a_batch() -> None:
    operation = DOCUMENT["paths"]["/v1/events"]["post"]
    responses = operation["responses"]
    created = responses["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/EventApplied"}
    ok = responses["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert ok == [
        {"$ref": "#/components/schemas/BatchResults"},
        {"$ref": "#/components/schemas/EventApplied"},
    ]
    assert operation["security"] == [{"HTTPBearer": []}, {"WebhookSignature": []}]
    found = codes(operation)
    assert found["404"] == ["program_not_found"]
    assert found["413"] == ["batch_too_large", "payload_too_large"]
    # A referenced member or sale an event does not find is a 422: the sender retries later.
    assert "unknown_member" in found["422"]
    assert "404" not in found or "member_not_found" not in found["404"]


def test_fastapi_s_own_validation_error_is_gone() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "code", "detail"}


# --- a 405 names every method of its path -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/members/M1", "GET, PATCH"),
        ("PUT", "/v1/members/M1", "GET, PATCH"),
        ("OPTIONS", "/v1/members/M1", "GET, PATCH"),
        ("GET", "/v1/members", "POST"),
        ("DELETE", "/v1/plan", "GET, PUT"),
        ("GET", "/v1/events", "POST"),
        ("POST", "/v1/members/M1/downline/stats", "GET"),
    ],
)
async def test_a_method_the_path_does_not_take_is_405_naming_every_method_it_does(
    client: httpx.AsyncClient, program: Program, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=program.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"


# --- instants are RFC 3339 text, as `format: date-time` says ---------------------------------


@pytest.mark.parametrize(
    "enrolled_at",
    [0, 1_700_000_000, "1700000000", "2026-11-05 10:00:00Z", "2026-11-05T10:00Z", "2026-11-05"],
)
async def test_an_instant_that_is_not_rfc_3339_text_is_refused(
    client: httpx.AsyncClient, program: Program, enrolled_at: object
) -> None:
    response = await client.post(
        "/v1/members",
        json={"id": "M1", "sponsor_id": None, "enrolled_at": enrolled_at},
        headers=program.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["loc"] == ["body", "enrolled_at"]
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 404


async def test_an_instant_with_an_offset_is_taken(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await client.post(
        "/v1/members",
        json={"id": "M1", "sponsor_id": None, "enrolled_at": "2026-11-05T10:00:00.5+01:00"},
        headers=program.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["enrolled_at"] == "2026-11-05T09:00:00.500000Z"


# --- the document's patterns refuse nothing the service takes -------------------------------


def test_the_period_pattern_is_what_parse_period_takes() -> None:
    # Every year, with the months around each edge, and a few other shapes.
    months = (0, 1, 9, 10, 12, 13, 20, 99)
    texts = [f"{year:04d}-{month:02d}" for year in range(10_000) for month in months]
    fullwidth = "\uff12\uff10\uff12\uff16-11"
    texts += ["", "2026-1", "2026-011", "202611", fullwidth, "2026-11\n", " 2026-11"]
    pattern = re.compile(PERIOD_PATTERN.removeprefix("^").removesuffix("$"))
    for text in texts:
        try:
            parse_period(text)
        except PeriodError:
            taken = False
        else:
            taken = True
        assert (pattern.fullmatch(text) is not None) == taken, text


@given(st.text(alphabet="0123456789.-+e ٣", max_size=24))
def test_the_money_pattern_refuses_no_amount_the_service_takes(text: str) -> None:
    matches = re.fullmatch(MONEY_PATTERN.removeprefix("^").removesuffix("$"), text) is not None
    try:
        parse_money(text, "KWD")
    except MoneyError:
        return
    assert matches, text


@given(
    st.datetimes(
        min_value=datetime(1969, 12, 30),
        max_value=datetime(9999, 12, 2),
    ),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)
def test_the_instant_year_pattern_refuses_no_instant_the_service_takes(
    moment: datetime, offset_minutes: int
) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    try:
        local = moment.replace(tzinfo=UTC).astimezone(zone)
    except OverflowError:
        return
    text = local.isoformat()
    try:
        TypeAdapter(Instant).validate_python(text)
    except ValidationError:
        return
    assert re.search(INSTANT_YEAR_PATTERN, text) is not None, text
