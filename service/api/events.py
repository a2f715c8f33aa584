"""Webhook intake: one event or a batch, each applied exactly once, through the same code as
the REST calls."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.api import answers
from service.api import members as members_api
from service.api import sales as sales_api
from service.api.deps import SessionDep
from service.api.problems import problem, problem_responses
from service.api.sales import ObjectId, RefundRequest, SaleRequest
from service.api.schemas import EnrollRequest, MemberId, MoveRequest, UpdateMemberRequest
from service.api.schemas import Request as Body
from service.db import intake as intake_sql
from service.db import members as member_sql
from service.db import programs as program_sql
from service.db import sales as sale_sql
from service.errors import (
    BatchTooLarge,
    Forbidden,
    MalformedRequest,
    MemberNotFound,
    ProgramNotFound,
    SaleNotFound,
    ServiceError,
    Unauthorized,
    UnknownMember,
    UnknownSale,
    ValidationFailed,
)
from service.services import intake, programs
from service.services import members as member_service
from service.services import sales as sale_service
from service.services.intake import Outcome
from service.services.members import EnrollInput
from service.services.programs import Principal

MAX_BATCH = 1000

router = APIRouter(prefix="/v1", tags=["events"])

EventId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$"),
    Field(description="the sender's event id: applied once, remembered forever"),
]


class MemberUpdatedData(UpdateMemberRequest):
    id: MemberId


class MemberMovedData(MoveRequest):
    id: MemberId


class SaleRefundedData(RefundRequest):
    sale_id: ObjectId


class _Envelope(Body):
    id: EventId
    occurred_at: AwareDatetime


class MemberEnrolled(_Envelope):
    type: Literal["member.enrolled"]
    data: EnrollRequest


class MemberUpdated(_Envelope):
    type: Literal["member.updated"]
    data: MemberUpdatedData


class MemberMoved(_Envelope):
    type: Literal["member.moved"]
    data: MemberMovedData


class SaleCompleted(_Envelope):
    type: Literal["sale.completed"]
    data: SaleRequest


class SaleRefunded(_Envelope):
    type: Literal["sale.refunded"]
    data: SaleRefundedData


Event = Annotated[
    MemberEnrolled | MemberUpdated | MemberMoved | SaleCompleted | SaleRefunded,
    Field(discriminator="type"),
]


class EventBatch(Body):
    events: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, description="up to 1,000 events, applied in order"
    )


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


def _result_json(result: EventResult) -> dict[str, Any]:
    """A result without the fields that do not apply to it; `id` is always there."""
    return {"id": result.id, **result.model_dump(mode="json", exclude_none=True)}


_EVENT: TypeAdapter[Any] = TypeAdapter(Event)
EVENT_TYPES = frozenset(
    {"member.enrolled", "member.updated", "member.moved", "sale.completed", "sale.refunded"}
)
_NOT_YET_KNOWN: dict[type[ServiceError], type[ServiceError]] = {
    MemberNotFound: UnknownMember,
    SaleNotFound: UnknownSale,
}


async def _dispatch(session: AsyncSession, caller: Principal, event: Any) -> Outcome:
    """The REST call that an event stands for."""
    data = event.data
    match event:
        case MemberEnrolled():
            return await members_api.apply_enroll(session, caller, data)
        case MemberUpdated():
            changes = UpdateMemberRequest.model_validate(
                data.model_dump(include=data.model_fields_set - {"id"})
            )
            return await members_api.apply_update(session, caller, data.id, changes)
        case MemberMoved():
            move = MoveRequest(sponsor_id=data.sponsor_id)
            return await members_api.apply_move(session, caller, data.id, move)
        case SaleCompleted():
            return await sales_api.apply_sale(session, caller, data)
        case SaleRefunded():
            refund = RefundRequest(id=data.id, amount=data.amount, occurred_at=data.occurred_at)
            return await sales_api.apply_refund(session, caller, data.sale_id, refund)
    raise AssertionError(f"no handler for {type(event).__name__}")


async def _as_event(apply: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """In an event, a reference to something not yet known is a 422 (the sender retries
    later), not the 404 the REST path answers."""
    try:
        return await apply()
    except (MemberNotFound, SaleNotFound) as error:
        raise _NOT_YET_KNOWN[type(error)](error.detail) from error


def _validation_errors(
    error: ValidationError, prefix: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    found = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = [str(part) for part in item["loc"]]
        if location and location[0] in EVENT_TYPES:  # the union's tag: not part of the body
            location = location[1:]
        if item["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            location = ["type"]
        found.append({"loc": [*prefix, *location], "msg": item["msg"], "type": item["type"]})
    return found


def _invalid(errors: list[dict[str, Any]]) -> ValidationFailed:
    """The refusal of an invalid event or batch, naming its first bad field."""
    first = errors[0]
    return ValidationFailed(f"{'.'.join(first['loc'])}: {first['msg']}", errors=errors)


def _refused(event_id: str | None, error: ServiceError) -> EventResult:
    return EventResult(
        id=event_id,
        status=error.status,
        code=error.code,
        detail=error.detail,
        errors=error.extra.get("errors"),
    )


def _parse(raw: Any) -> tuple[Any, str] | EventResult:
    """The validated event and its fingerprint, or the refusal of an invalid one."""
    event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    try:
        event = _EVENT.validate_python(raw)
    except ValidationError as error:
        return _refused(event_id, _invalid(_validation_errors(error)))
    fingerprint = intake.fingerprint(
        {"type": raw["type"], "occurred_at": raw["occurred_at"], "data": raw["data"]}
    )
    return event, fingerprint


_Parsed = tuple[int, Any, str]
"""An event to apply: its position in the batch, the event, its fingerprint."""


async def apply_event(session: AsyncSession, caller: Principal, raw: Any) -> EventResult:
    """Validate, then apply one event exactly once; a refusal leaves nothing written."""
    (result,) = await apply_events(session, caller, [raw])
    return result


async def _apply_alone(
    session: AsyncSession, caller: Principal, event: Any, fingerprint: str
) -> EventResult:
    try:
        outcome = await intake.apply_once(
            session,
            caller.program_id,
            scope=intake.EVENT,
            key=event.id,
            request_fingerprint=fingerprint,
            apply=lambda: _as_event(lambda: _dispatch(session, caller, event)),
            rebuild=answers.rebuilder(session, caller.program_id),
        )
    except ServiceError as error:
        return _refused(event.id, error)
    return EventResult(
        id=event.id, status=outcome.status, duplicate=outcome.duplicate, body=outcome.body
    )


async def apply_events(
    session: AsyncSession, caller: Principal, raws: list[Any], *, with_bodies: bool = True
) -> list[EventResult]:
    """Apply events in order, each exactly once and each on its own: a refused event writes
    nothing and does not undo the others. Without `with_bodies` (the bulk import, which
    only counts outcomes) created sales answer no body; what is remembered is the same.

    Runs of enrolments and sales are applied together, a few statements for the whole run,
    with the same outcome as one at a time: a sale sees only the enrolments and sales before
    it. Other events (changes, moves, refunds), and an id seen before in the run, end the
    run and are applied one at a time.
    """
    results: list[EventResult | None] = [None] * len(raws)
    steps: list[list[_Parsed] | _Parsed] = []  # a run, or an event applied alone
    ids_in_run: set[str] = set()
    for index, raw in enumerate(raws):
        parsed = _parse(raw)
        if isinstance(parsed, EventResult):
            results[index] = parsed
            continue
        event, fingerprint = parsed
        if not isinstance(event, MemberEnrolled | SaleCompleted):
            steps.append((index, event, fingerprint))
            continue
        if not steps or not isinstance(steps[-1], list) or event.id in ids_in_run:
            steps.append([])
            ids_in_run = set()
        last = steps[-1]
        assert isinstance(last, list)
        last.append((index, event, fingerprint))
        ids_in_run.add(event.id)
    if _changes_tree_after_volumes(steps):
        # A relabelling waits for every transaction that holds the labels of volume rows
        # (see sale_sql.HOLD_LABELS), and such a transaction may be waiting for a volume row
        # this batch wrote: hold the tree and its labels first, before writing any.
        await member_sql.lock_genealogy(session, caller.program_id)
        await sale_sql.lock_labels(session, caller.program_id)
    for step in steps:
        if isinstance(step, list):
            await _apply_run(session, caller, step, results, with_bodies)
        else:
            index, event, fingerprint = step
            results[index] = await _apply_alone(session, caller, event, fingerprint)
    return [result for result in results if result is not None]


def _changes_tree_after_volumes(steps: list[list[_Parsed] | _Parsed]) -> bool:
    """Whether an enrolment or a move comes in a later step than a sale or a refund (within a
    run, enrolments are applied before sales)."""
    volumes_written = False
    for step in steps:
        events = [event for _, event, _ in step] if isinstance(step, list) else [step[1]]
        if volumes_written and any(isinstance(e, MemberEnrolled | MemberMoved) for e in events):
            return True
        volumes_written |= any(isinstance(e, SaleCompleted | SaleRefunded) for e in events)
    return False


async def _no_body(stored: dict[str, Any]) -> dict[str, Any]:
    return {}


async def _apply_run(
    session: AsyncSession,
    caller: Principal,
    run: list[_Parsed],
    results: list[EventResult | None],
    with_bodies: bool,
) -> None:
    """Claim the run's event ids at once, apply the claimed events together, answer them."""
    if not run:
        return
    program_id = caller.program_id
    ordered = sorted(run, key=lambda item: item[1].id)  # one lock order for every claimer
    claimed = await intake_sql.claim(
        session,
        program_id,
        intake.EVENT,
        [event.id for _, event, _ in ordered],
        [fingerprint for _, _, fingerprint in ordered],
    )
    applied_before = await intake_sql.find_applied_keys(
        session, program_id, intake.EVENT, [e.id for _, e, _ in run if e.id not in claimed]
    )
    # A caller that only counts outcomes does not need remembered answers built again.
    rebuild = answers.rebuilder(session, program_id) if with_bodies else _no_body
    work = []
    for index, event, fingerprint in run:
        if event.id in claimed:
            work.append((index, event))
            continue
        try:
            outcome = await intake.replay(
                applied_before[event.id], intake.EVENT, event.id, fingerprint, rebuild
            )
        except ServiceError as error:
            results[index] = _refused(event.id, error)
            continue
        results[index] = EventResult(
            id=event.id, status=outcome.status, duplicate=True, body=outcome.body
        )

    outcomes: dict[int, Outcome | ServiceError] = {}
    enrolments = [(i, e) for i, e in work if isinstance(e, MemberEnrolled)]
    enrolled = await member_service.enroll_many(
        session,
        program_id,
        [
            EnrollInput(e.data.id, e.data.sponsor_id, e.data.enrolled_at, e.data.name)
            for _, e in enrolments
        ],
    )
    enrolled_at_position: dict[str, int] = {}
    for (index, event), result in zip(enrolments, enrolled, strict=True):
        if isinstance(result, ServiceError):
            outcomes[index] = result
            continue
        outcomes[index] = members_api.enrolment_outcome(result)
        if result.created:
            enrolled_at_position.setdefault(event.data.id, index)

    sales = []
    for index, event in work:
        if not isinstance(event, SaleCompleted):
            continue
        if enrolled_at_position.get(event.data.member_id, -1) > index:
            # Its seller is enrolled by a later event: one at a time, it would be unknown.
            outcomes[index] = UnknownMember(
                f"member {event.data.member_id!r} is not enrolled in this program"
            )
            continue
        sales.append((index, event))
    recorded = await sale_service.record_sales(
        session, caller.program, [sales_api.sale_input(e.data) for _, e in sales]
    )
    for (index, _), sale_result in zip(sales, recorded, strict=True):
        outcomes[index] = (
            sale_result
            if isinstance(sale_result, ServiceError)
            else answers.sale_outcome(sale_result, with_body=with_bodies)
        )

    remembered: list[tuple[str, int, dict[str, Any]]] = []
    withdrawn: list[str] = []
    for index, event in work:
        done = outcomes[index]
        if isinstance(done, ServiceError):
            results[index] = _refused(event.id, done)
            withdrawn.append(event.id)
            continue
        results[index] = EventResult(
            id=event.id, status=done.status, duplicate=False, body=done.body
        )
        remembered.append((event.id, done.status, intake.remembered(done)))
    await intake_sql.answer_claims(session, program_id, intake.EVENT, remembered)
    await intake_sql.withdraw_claims(session, program_id, intake.EVENT, withdrawn)


async def _sender(
    session: AsyncSession, request: Request, body: bytes, program_id: str | None
) -> Principal:
    """An API key with `events:write`, or a Standard Webhooks signature made with one of the
    program's active secrets (the program named by `?program=`)."""
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
        caller = await programs.authenticate(session, key.strip())
        if not caller.allows("events:write"):
            raise Forbidden("this call needs the 'events:write' scope")
        if program_id is not None and program_id != caller.program_id:
            raise ProgramNotFound(f"program {program_id!r} does not exist")
        return caller
    if "webhook-signature" not in request.headers:
        raise Unauthorized("send an API key, or sign the request (Standard Webhooks)")
    if program_id is None:
        raise Unauthorized("a signed request names its program: POST /v1/events?program=ID")
    program = await program_sql.get_program(session, program_id)
    if program is None or not await intake.signature_is_valid(
        session, program_id, body, request.headers
    ):
        raise Unauthorized("the webhook signature is missing, stale, or not valid")
    return Principal(program=program, key_id="webhook", scopes=frozenset({"events:write"}))


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
    caller = await _sender(session, request, raw_body, program)
    try:
        payload = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedRequest("the body is not valid JSON") from error
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if isinstance(events, list) and len(events) > MAX_BATCH:
            raise BatchTooLarge(f"a batch holds at most {MAX_BATCH} events, not {len(events)}")
        try:
            batch = EventBatch.model_validate(payload)
        except ValidationError as error:
            raise _invalid(_validation_errors(error, ("body",))) from error
        results = await apply_events(session, caller, batch.events)
        return JSONResponse({"results": [_result_json(result) for result in results]})
    result = await apply_event(session, caller, payload)
    if result.code is not None:
        extra: dict[str, Any] = {"id": result.id}
        if result.errors:
            extra["errors"] = result.errors
        return problem(
            result.status, result.code, "The event was refused", result.detail or "", **extra
        )
    return JSONResponse(_result_json(result), status_code=result.status)


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
