"""Webhook intake: `POST /v1/events` takes one event or a batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter

from service.api.deps import SessionDep, event_sender
from service.api.problems import problem_response, problem_responses
from service.errors import BatchTooLarge
from service.intake import events
from service.intake.events import MAX_BATCH, Event, EventBatch
from service.intake.payloads import parse_json

router = APIRouter(prefix="/v1", tags=["events"])


class EventResult(BaseModel):
    """One event's outcome: `body` is what the matching REST call answered; a refusal has
    `code` and `detail` instead, and nothing of it was written."""

    id: str | None
    status: int
    duplicate: bool | None = None
    body: dict[str, Any] | None = None
    code: str | None = None
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


class BatchResults(BaseModel):
    results: list[EventResult]


@router.post(
    "/events",
    response_model=EventResult,
    responses={
        201: {"model": EventResult, "description": "A single event was applied"},
        200: {
            "model": BatchResults,
            "description": "A batch: one result per event, in order (or a single event "
            "applied before, or one that changed nothing)",
        },
        **problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
    },
)
async def post_events(
    request: Request,
    session: SessionDep,
    program: Annotated[
        str | None,
        Query(max_length=63, description="the program, for requests signed with a webhook secret"),
    ] = None,
) -> Response:
    """Apply `{"id", "type", "occurred_at", "data"}` or `{"events": [...]}` (up to 1,000).

    Types: `member.enrolled`, `member.updated`, `member.moved`, `sale.completed`,
    `sale.refunded`; `data` is the body of the matching REST call (with `id` for member
    changes and `sale_id` for refunds). Each event id is applied once: a replay answers what
    the first delivery answered, with `duplicate: true`; the same id with another body is
    409 `event_conflict`. An event referring to something not yet known is refused with
    422 and nothing written, so a retry succeeds once it is known.
    """
    raw_body = await request.body()
    caller = await event_sender(session, request, raw_body, program)
    payload = parse_json(raw_body)
    if isinstance(payload, dict) and "events" in payload:
        batch = payload["events"]
        if isinstance(batch, list) and len(batch) > MAX_BATCH:
            raise BatchTooLarge(f"a batch holds at most {MAX_BATCH} events, not {len(batch)}")
        results = await events.apply_events(session, caller, events.batch_events(payload))
        return JSONResponse({"results": [result.as_json() for result in results]})
    (result,) = await events.apply_events(session, caller, [payload])
    if result.code is not None:
        extra: dict[str, Any] = {"id": result.id}
        if result.errors:
            extra["errors"] = result.errors
        return problem_response(
            result.status, result.code, "The event was refused", result.detail or "", **extra
        )
    return JSONResponse(result.as_json(), status_code=result.status)


def document(schema: dict[str, Any]) -> None:
    """Describe the request body in the OpenAPI document (the route reads it raw, since a
    signature is over the exact bytes)."""
    adapter: TypeAdapter[Any] = TypeAdapter(Event | EventBatch)
    body = adapter.json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in body.pop("$defs", {}).items():
        components.setdefault(name, definition)
    operation = schema["paths"]["/v1/events"]["post"]
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": body}},
    }
