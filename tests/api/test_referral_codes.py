"""Referral codes: a member carries one (unique in the program whatever its case), a recruit
is enrolled by their sponsor's code, and a code is changed or cleared by PATCH; every
refusal writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.intake.requests import EnrollRequest
from tests.conftest import Program, make_program

ENROLLED_AT = "2026-11-01T00:00:00Z"


async def enrol(client: httpx.AsyncClient, program: Program, **body: Any) -> httpx.Response:
    return await client.post(
        "/v1/members", json={"enrolled_at": ENROLLED_AT, **body}, headers=program.headers
    )


async def member(client: httpx.AsyncClient, program: Program, member_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/members/{member_id}", headers=program.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["code"]
    return code


async def test_a_recruit_is_enrolled_by_the_sponsors_code_in_any_case(
    client: httpx.AsyncClient, program: Program
) -> None:
    created = await enrol(client, program, id="ANNA", sponsor_id=None, referral_code="Anna10")
    assert created.status_code == 201, created.text
    assert created.json()["referral_code"] == "Anna10"
    recruit = await enrol(client, program, id="BEN", sponsor_code="ANNA10")
    assert recruit.status_code == 201, recruit.text
    assert (recruit.json()["sponsor_id"], recruit.json()["referral_code"]) == ("ANNA", None)
    assert (await member(client, program, "ANNA"))["direct_recruits"] == 1
    # The same enrolment again answers the member as it is; another code is a conflict.
    again = await enrol(client, program, id="ANNA", sponsor_id=None, referral_code="Anna10")
    assert again.status_code == 200, again.text
    other = await enrol(client, program, id="ANNA", sponsor_id=None, referral_code="Other")
    assert await problem(other, 409) == "member_exists"


async def test_a_code_is_unique_in_the_program_whatever_its_case(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], program: Program
) -> None:
    other_program = await make_program(sessions, "other")
    assert (await enrol(client, program, id="A", sponsor_id=None, referral_code="SAVE")).is_success
    taken = await enrol(client, program, id="B", sponsor_id=None, referral_code="save")
    assert await problem(taken, 409) == "referral_code_taken"
    assert (await client.get("/v1/members/B", headers=program.headers)).status_code == 404
    # Another program's members may hold the same code, and its code enrols nobody here.
    elsewhere = await enrol(client, other_program, id="A", sponsor_id=None, referral_code="save")
    assert elsewhere.status_code == 201, elsewhere.text
    unknown = await enrol(client, program, id="C", sponsor_code="NOBODY")
    assert await problem(unknown, 422) == "unknown_sponsor"
    assert "NOBODY" in unknown.json()["detail"]
    assert (await client.get("/v1/members/C", headers=program.headers)).status_code == 404


async def test_the_sponsor_is_given_exactly_once_and_codes_have_a_form(
    client: httpx.AsyncClient, program: Program
) -> None:
    await enrol(client, program, id="A", sponsor_id=None, referral_code="A1")
    both = await enrol(client, program, id="B", sponsor_id="A", sponsor_code="A1")
    neither = await enrol(client, program, id="B")
    spaced = await enrol(client, program, id="B", sponsor_id=None, referral_code="has space")
    long = await enrol(client, program, id="B", sponsor_id=None, referral_code="X" * 65)
    for response in (both, neither, spaced, long):
        assert await problem(response, 422) == "validation_error"
    assert (await client.get("/v1/members/B", headers=program.headers)).status_code == 404


async def test_a_code_is_set_changed_and_cleared_by_patch(
    client: httpx.AsyncClient, program: Program
) -> None:
    for member_id in ("A", "B"):
        assert (await enrol(client, program, id=member_id, sponsor_id=None)).is_success

    async def patch(member_id: str, code: str | None) -> httpx.Response:
        return await client.patch(
            f"/v1/members/{member_id}", json={"referral_code": code}, headers=program.headers
        )

    assert (await patch("A", "spring")).json()["referral_code"] == "spring"
    assert (await patch("A", "SPRING")).json()["referral_code"] == "SPRING"  # its own code
    assert await problem(await patch("B", "Spring"), 409) == "referral_code_taken"
    assert (await member(client, program, "B"))["referral_code"] is None
    assert (await patch("A", None)).json()["referral_code"] is None
    assert (await patch("B", "Spring")).json()["referral_code"] == "Spring"
    # A PATCH that leaves the code out keeps it.
    renamed = await client.patch("/v1/members/B", json={"name": "Bea"}, headers=program.headers)
    assert (renamed.json()["name"], renamed.json()["referral_code"]) == ("Bea", "Spring")


async def test_in_one_batch_a_code_given_enrols_the_next_and_a_repeat_is_refused_alone(
    client: httpx.AsyncClient, program: Program
) -> None:
    def enrolled(event_id: str, **data: Any) -> dict[str, Any]:
        return {"id": event_id, "type": "member.enrolled", "occurred_at": ENROLLED_AT,
                "data": {"enrolled_at": ENROLLED_AT, **data}}  # fmt: skip

    events = [
        enrolled("e1", id="LEAD", sponsor_id=None, referral_code="lead"),
        enrolled("e2", id="R1", sponsor_code="LEAD"),
        enrolled("e3", id="R2", sponsor_id=None, referral_code="Lead"),
        enrolled("e4", id="R3", sponsor_code="lead", referral_code="r3"),
    ]
    response = await client.post("/v1/events", json={"events": events}, headers=program.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["status"], r.get("code")) for r in results] == [
        ("e1", 201, None), ("e2", 201, None), ("e3", 409, "referral_code_taken"),
        ("e4", 201, None),
    ]  # fmt: skip
    assert [results[i]["body"]["sponsor_id"] for i in (1, 3)] == ["LEAD", "LEAD"]
    assert (await client.get("/v1/members/R2", headers=program.headers)).status_code == 404


async def test_a_retried_enrolment_by_code_is_answered_after_the_code_is_given_up(
    client: httpx.AsyncClient, program: Program
) -> None:
    assert (await enrol(client, program, id="A", sponsor_id=None, referral_code="old")).is_success
    assert (await enrol(client, program, id="B", sponsor_code="old")).status_code == 201
    changed = await client.patch(
        "/v1/members/A", json={"referral_code": "new"}, headers=program.headers
    )
    assert changed.status_code == 200, changed.text
    # Nobody holds "old" now: the retry is answered with B as enrolled, under A.
    retried = await enrol(client, program, id="B", sponsor_code="old")
    assert (retried.status_code, retried.json()["sponsor_id"]) == (200, "A")
    # Once C holds "old", the same body names another sponsor than B's: a conflict.
    assert (await enrol(client, program, id="C", sponsor_id=None, referral_code="OLD")).is_success
    assert await problem(await enrol(client, program, id="B", sponsor_code="old"), 409) == (
        "member_exists"
    )


async def test_an_idempotency_key_remembers_an_enrolment_without_the_new_fields(
    client: httpx.AsyncClient, program: Program
) -> None:
    # The fingerprint of a body that gives neither code is what it was before codes
    # existed, so a key remembered then still matches its retry: here, the same body twice
    # under one key is answered the same, and another body under it is a conflict.
    headers = {**program.headers, "Idempotency-Key": "enrol-A"}
    body = {"id": "A", "sponsor_id": None, "enrolled_at": ENROLLED_AT}
    remembered = EnrollRequest.model_validate(body).fingerprinted()
    assert set(remembered) == {"id", "sponsor_id", "enrolled_at", "name"}  # the fields before
    first = await client.post("/v1/members", json=body, headers=headers)
    again = await client.post("/v1/members", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    other = await client.post("/v1/members", json={**body, "referral_code": "A1"}, headers=headers)
    assert await problem(other, 409) == "idempotency_conflict"
