"""Webhook intake: `POST /v1/events` takes one event or a batch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue, TypeAdapter

from service.api.deps import SessionDep, event_sender
from service.api.problems import problem_response, problem_responses
from service.api.schemas import FieldError
from service.errors import BatchTooLarge, ProgramNotFound
from service.intake import events
from service.intake.events import MAX_BATCH, Event, EventBatch
from service.intake.payloads import parse_json
from service.services.programs import PROGRAM_ID

router = APIRouter(prefix="/v1", tags=["events"])


class EventApplied(BaseModel):
    """An applied event: `body` is what the matching REST call answered, and `status` its
    status (201 created, 200 changed or found as it was)."""

    id: str
    status: Literal[200, 201]
    duplicate: bool = Field(description="applied before: this is what the first delivery got")
    body: dict[str, Any]


_REFUSAL_STATUSES: list[JsonValue] = [
    status for status in sorted({refusal.status for refusal in events.REFUSALS})
]
_REFUSAL_CODES: list[JsonValue] = [
    code for code in sorted({refusal.code for refusal in events.REFUSALS})
]


class EventRefused(BaseModel):
    """A refused event: nothing of it was written. `id` is null when the event had none."""

    id: str | None
    status: int = Field(json_schema_extra={"enum": _REFUSAL_STATUSES})
    code: str = Field(json_schema_extra={"enum": _REFUSAL_CODES})
    detail: str
    errors: list[FieldError] | None = Field(
        default=None, description="validation_error: every field that was not valid"
    )


class BatchResults(BaseModel):
    """One result per event of the batch, in order."""

    results: list[EventApplied | EventRefused]


@router.post(
    "/events",
    status_code=201,
    responses={
        201: {"model": EventApplied, "description": "A single event created what it names"},
        200: {
            "model": BatchResults | EventApplied,
            "description": "A batch: one result per event, in order; or a single event that "
            "changed a member, or was applied before, or found what it names as it was",
        },
        **problem_responses(ProgramNotFound, BatchTooLarge, *events.REFUSALS),
    },
)
async def post_events(
    request: Request,
    session: SessionDep,
    program: Annotated[
        str | None,
        Query(
            max_length=63,
            description="the program, for requests signed with a webhook secret",
            json_schema_extra={"pattern": f"^{PROGRAM_ID.pattern}$"},
        ),
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
    """Describe the request body and the two ways to authenticate in the OpenAPI document
    (the route reads the body raw, since a signature is over the exact bytes)."""
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
    schemes = schema["components"].setdefault("securitySchemes", {})
    schemes["WebhookSignature"] = {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": "A Standard Webhooks signature made with one of the program's "
        "active secrets, with the `webhook-id` and `webhook-timestamp` headers (5 minutes "
        "either way); the program is named by `?program=`.",
    }
    operation["security"] = [{"HTTPBearer": []}, {"WebhookSignature": []}]
