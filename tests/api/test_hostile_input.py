"""What a sender can type never breaks the write path: NUL characters and lone surrogates,
duplicate keys, invalid UTF-8 and deep nesting are refused with a clear 4xx, nothing is
written, and in a batch only the bad event is refused."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.importer import import_events
from tests.api.flows import put_plan
from tests.conftest import Program

PLAN: dict[str, Any] = {
    "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}
}


def raw(value: Any) -> bytes:
    """JSON as a sender may write it: a lone surrogate travels as its \\u escape."""
    return json.dumps(value, ensure_ascii=True).encode()


async def post_raw(
    client: httpx.AsyncClient, program: Program, path: str, body: bytes, method: str = "POST"
) -> httpx.Response:
    headers = {**program.headers, "Content-Type": "application/json"}
    return await client.request(method, path, content=body, headers=headers)


async def test_a_nul_in_a_name_is_refused_naming_the_field(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await post_raw(
        client, program, "/v1/members", raw({"id": "M1", "sponsor_id": None, "name": "a\x00b"})
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"][0]["loc"] == ["body", "name"]
    assert problem["detail"] == "body.name: Value error, must not contain a NUL character"
    missing = await client.get("/v1/members/M1", headers=program.headers)
    assert missing.status_code == 404


async def test_a_lone_surrogate_in_a_name_is_refused(
    client: httpx.AsyncClient, program: Program
) -> None:
    response = await post_raw(
        client, program, "/v1/members", raw({"id": "M1", "sponsor_id": None, "name": "x\ud800"})
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]
    assert (await client.get("/v1/members/M1", headers=program.headers)).status_code == 404


async def test_a_nul_event_in_a_batch_is_refused_alone(
    client: httpx.AsyncClient, program: Program
) -> None:
    def enrolment(event_id: str, member_id: str, name: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "type": "member.enrolled",
            "occurred_at": "2026-11-01T00:00:00Z",
            "data": {"id": member_id, "sponsor_id": None, "name": name},
        }

    batch = {
        "events": [
            enrolment("e1", "M1", "Ann"),
            enrolment("e2", "M2", "B\x00b"),
            enrolment("e3", "M3", "Cy"),
        ]
    }
    response = await post_raw(client, program, "/v1/events", raw(batch))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [("e1", 201), ("e2", 422), ("e3", 201)]
    assert results[1]["code"] == "validation_error"
    assert results[1]["errors"][0]["loc"] == ["data", "name"]
    for member_id, status in (("M1", 200), ("M2", 404), ("M3", 200)):
        found = await client.get(f"/v1/members/{member_id}", headers=program.headers)
        assert found.status_code == status
    again = await post_raw(client, program, "/v1/events", raw(batch))  # the sender's retry
    assert [r["status"] for r in again.json()["results"]] == [201, 422, 201]
    assert [r.get("duplicate") for r in again.json()["results"]] == [True, None, True]


@pytest.mark.parametrize("path", ["/v1/members", "/v1/events", "/v1/sales"])
async def test_nesting_past_the_bound_is_malformed_json(
    client: httpx.AsyncClient, program: Program, path: str
) -> None:
    deep = b'{"a":' * 1200 + b"1" + b"}" * 1200
    response = await post_raw(client, program, path, deep)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert response.json()["detail"] == "the JSON is nested more than 32 levels deep"
    moderately = b"[" * 40 + b"]" * 40  # parses, but deeper than any request needs
    response = await post_raw(client, program, path, moderately)
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


@pytest.mark.parametrize("path", ["/v1/members", "/v1/events"])
async def test_invalid_utf8_is_malformed_json(
    client: httpx.AsyncClient, program: Program, path: str
) -> None:
    response = await post_raw(client, program, path, b'{"id": "M\xff1", "sponsor_id": null}')
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert response.json()["detail"] == "the body is not UTF-8"


async def test_a_duplicate_key_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, program: Program
) -> None:
    body = b'{"id": "A", "id": "B", "sponsor_id": null}'
    response = await post_raw(client, program, "/v1/members", body)
    assert response.status_code == 422
    assert response.json()["code"] == "duplicate_key"
    assert response.json()["detail"] == "the key 'id' appears twice in one object"
    for member_id in ("A", "B"):
        found = await client.get(f"/v1/members/{member_id}", headers=program.headers)
        assert found.status_code == 404
    event = (
        b'{"id": "e1", "type": "member.enrolled", "occurred_at": "2026-11-01T00:00:00Z",'
        b' "data": {"id": "A", "sponsor_id": null, "sponsor_id": "B"}}'
    )
    response = await post_raw(client, program, "/v1/events", event)
    assert (response.status_code, response.json()["code"]) == (422, "duplicate_key")


async def test_the_import_refuses_a_nul_line_and_goes_on(
    sessions: async_sessionmaker[AsyncSession], program: Program, tmp_path: Path
) -> None:
    def enrolment(event_id: str, member_id: str, name: str) -> str:
        event = {
            "id": event_id,
            "type": "member.enrolled",
            "occurred_at": "2026-11-01T00:00:00Z",
            "data": {"id": member_id, "sponsor_id": None, "name": name},
        }
        return json.dumps(event)

    lines = [
        enrolment("e1", "M1", "Ann"),
        enrolment("e2", "M2", "B\x00b"),
        '{"id": "e3", "id": "e4"}',
        enrolment("e5", "M5", "Cy"),
    ]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")
    for run in range(2):  # a rerun neither stops nor applies anything twice
        refused = tmp_path / f"refused-{run}.ndjson"
        with refused.open("w") as refused_out:
            report = await import_events(
                sessions, program.id, path, parallel=1, refused_out=refused_out
            )
        assert (report.applied, report.duplicates, report.refused) == (
            (2, 0, 2) if run == 0 else (0, 2, 2)
        )
        assert dict(report.reasons) == {"validation_error": 1, "duplicate_key": 1}
        assert refused.read_text().splitlines() == [lines[1], lines[2]]


# Every text field of every write route and event type, fed arbitrary text.

_TEXT = st.one_of(
    st.text(
        alphabet=st.one_of(
            st.characters(codec=None, categories=None),
            st.sampled_from(["\x00", "\ud800", "\udfff", "\ufeff", "{", '"', "\\"]),
        ),
        max_size=80,
    ),
    # Text that is valid but for one NUL or lone surrogate, so that it gets past the field's
    # other rules (a name, an id) as far as it can.
    st.tuples(
        st.text(alphabet="abcXYZ019._:-", min_size=1, max_size=10),
        st.sampled_from(["\x00", "\ud800", "\udc00"]),
    ).map("".join),
)
_counter = itertools.count()


def _valid_bodies(n: int) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """A valid body for each write (method, path, body); ids are fresh for each example."""
    return {
        "enroll": ("POST", "/v1/members", {"id": f"N{n}", "sponsor_id": "ROOT", "name": "Ann"}),
        "update": ("PATCH", "/v1/members/ROOT", {"status": "active", "name": "Root"}),
        "move": ("POST", "/v1/members/LEAF/move", {"sponsor_id": "ROOT"}),
        "sale": (
            "POST",
            "/v1/sales",
            {
                "id": f"S{n}",
                "member_id": "LEAF",
                "amount": "10.00",
                "currency": "USD",
                "volume": "10.00",
                "category": "product",
                "subscription_id": "sub1",
                "customer": "retail",
                "occurred_at": "2026-11-03T10:00:00Z",
            },
        ),
        "refund": (
            "POST",
            "/v1/sales/BASE/refunds",
            {"id": f"R{n}", "amount": "0.01", "occurred_at": "2026-11-04T10:00:00Z"},
        ),
        "plan": (
            "PUT",
            "/v1/plan",
            {
                "effective_from": "2027-01-01T00:00:00Z",
                "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}},
                "compression": "none",
            },
        ),
    }


_EVENT_TYPES = {
    "enroll": "member.enrolled",
    "update": "member.updated",
    "move": "member.moved",
    "sale": "sale.completed",
    "refund": "sale.refunded",
}


def _event_data(write: str, body: dict[str, Any]) -> dict[str, Any]:
    if write == "update":
        return {"id": "ROOT", **body}
    if write == "move":
        return {"id": "LEAF", **body}
    if write == "refund":
        return {"sale_id": "BASE", **body}
    return body


_FIELDS = [
    (write, field)
    for write, (_, _, body) in _valid_bodies(0).items()
    for field in [*body, "<path>", "<key>"]
    if field != "<path>" or write in {"update", "move", "refund"}
]


@pytest.fixture
async def seeded(client: httpx.AsyncClient, program: Program) -> Program:
    await put_plan(client, program, **PLAN)
    for member_id, sponsor in (("ROOT", None), ("MID", "ROOT"), ("LEAF", "MID")):
        response = await client.post(
            "/v1/members",
            json={"id": member_id, "sponsor_id": sponsor, "enrolled_at": "2026-01-01T00:00:00Z"},
            headers=program.headers,
        )
        assert response.status_code == 201, response.text
    response = await client.post(
        "/v1/sales",
        json={
            "id": "BASE",
            "member_id": "LEAF",
            "amount": "100.00",
            "currency": "USD",
            "occurred_at": "2026-11-01T00:00:00Z",
        },
        headers=program.headers,
    )
    assert response.status_code == 201, response.text
    return program


def _fuzzed(write: str, field: str, text: str, n: int) -> tuple[str, str, dict[str, Any]]:
    method, path, body = _valid_bodies(n)[write]
    if field == "<path>":  # the id in the path, percent-encoded as any byte may be
        segment = quote(text.encode("utf-8", "surrogatepass"), safe="")
        path = path.replace("ROOT", segment).replace("LEAF", segment).replace("BASE", segment)
    elif field == "<key>":
        body = {**body, text: "x"}
    elif write == "plan" and field == "categories":
        body = {**body, "categories": {text: {"personal_rate": "0.1", "level_rates": []}}}
    else:
        body = {**body, field: text}
    return method, path, body


@pytest.mark.parametrize(("write", "field"), _FIELDS)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=_TEXT)
async def test_arbitrary_text_in_any_field_is_never_a_server_error(
    client: httpx.AsyncClient, seeded: Program, write: str, field: str, text: str
) -> None:
    n = next(_counter)
    method, path, body = _fuzzed(write, field, text, n)
    response = await post_raw(client, seeded, path, raw(body), method=method)
    assert 200 <= response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert isinstance(response.json()["code"], str)
    if write not in _EVENT_TYPES or field == "<path>":
        return

    # The same write as an event between two good ones: they are applied whatever it gets.
    def enrolment(member_id: str) -> dict[str, Any]:
        return {
            "id": f"ok-{member_id}",
            "type": "member.enrolled",
            "occurred_at": "2026-11-01T00:00:00Z",
            "data": {"id": member_id, "sponsor_id": "ROOT", "enrolled_at": "2026-02-01T00:00:00Z"},
        }

    _, _, event_body = _fuzzed(write, field, text, n + 2_000_000)
    fuzzed_event = {
        "id": f"fz-{n}",
        "type": _EVENT_TYPES[write],
        "occurred_at": "2026-11-05T00:00:00Z",
        "data": _event_data(write, event_body),
    }
    batch = {"events": [enrolment(f"B{n}"), fuzzed_event, enrolment(f"A{n}")]}
    response = await post_raw(client, seeded, "/v1/events", raw(batch))
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3
    assert results[0]["status"] == 201, results
    assert results[2]["status"] == 201, results
    assert results[1]["status"] < 500, results[1]
    for member_id in (f"B{n}", f"A{n}"):
        found = await client.get(f"/v1/members/{member_id}", headers=seeded.headers)
        assert found.status_code == 200
