"""Webhook events: one event or a batch, each applied exactly once (its id is remembered
forever), through the same writes as the REST calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import intake as intake_sql
from service.db import members as member_sql
from service.db import sales as sale_sql
from service.domain.identity import fingerprint
from service.errors import (
    EventConflict,
    MemberNotFound,
    SaleNotFound,
    ServiceError,
    UnknownMember,
    UnknownSale,
    ValidationFailed,
)
from service.intake import answers, ledger
from service.intake.ledger import Outcome, Scope
from service.intake.requests import (
    EnrollRequest,
    MemberId,
    MoveRequest,
    ObjectId,
    RefundRequest,
    Request,
    SaleRequest,
    UpdateMemberRequest,
)
from service.intake.writes import (
    Enrol,
    MoveMember,
    RecordSale,
    RefundSale,
    Refusals,
    UpdateMember,
    Write,
    deferring_parked_deliveries,
    parked_deliveries,
    sale_input,
)
from service.services import members, sales
from service.services.members import EnrollInput
from service.services.programs import Principal

MAX_BATCH = 1000

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


class _Envelope(Request):
    id: EventId
    occurred_at: AwareDatetime


class MemberEnrolled(_Envelope):
    type: Literal["member.enrolled"]
    data: EnrollRequest

    def write(self) -> Write:
        return Enrol(self.data)


class MemberUpdated(_Envelope):
    type: Literal["member.updated"]
    data: MemberUpdatedData

    def write(self) -> Write:
        return UpdateMember(self.data.id, self.data)


class MemberMoved(_Envelope):
    type: Literal["member.moved"]
    data: MemberMovedData

    def write(self) -> Write:
        return MoveMember(self.data.id, self.data)


class SaleCompleted(_Envelope):
    type: Literal["sale.completed"]
    data: SaleRequest

    def write(self) -> Write:
        return RecordSale(self.data)


class SaleRefunded(_Envelope):
    type: Literal["sale.refunded"]
    data: SaleRefundedData

    def write(self) -> Write:
        return RefundSale(self.data.sale_id, self.data)


AnyEvent = MemberEnrolled | MemberUpdated | MemberMoved | SaleCompleted | SaleRefunded
Event = Annotated[AnyEvent, Field(discriminator="type")]


class EventBatch(BaseModel):
    """A batch; its events are checked one by one, so a bad one refuses itself alone."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(
        min_length=1, max_length=MAX_BATCH, description="up to 1,000 events, applied in order"
    )


_AS_EVENT: dict[type[ServiceError], type[ServiceError]] = {
    MemberNotFound: UnknownMember,
    SaleNotFound: UnknownSale,
}
"""In an event, a reference to something not yet known is a 422 (the sender retries later),
not the 404 the REST path answers."""

REFUSALS: Refusals = tuple(
    dict.fromkeys(
        [
            ValidationFailed,
            EventConflict,
            *(
                _AS_EVENT.get(refusal, refusal)
                for write in (Enrol, UpdateMember, MoveMember, RecordSale, RefundSale)
                for refusal in write.refusals
            ),
        ]
    )
)
"""What an event can be refused with, whichever its type."""

EVENT_TYPES = frozenset(
    {"member.enrolled", "member.updated", "member.moved", "sale.completed", "sale.refunded"}
)
_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(Event)
_BATCH: TypeAdapter[EventBatch] = TypeAdapter(EventBatch)


@dataclass(frozen=True, slots=True)
class EventResult:
    """One event's outcome: `body` is what the matching REST call answered; a refusal has
    `code` and `detail` instead, and nothing of it was written."""

    id: str | None
    status: int
    duplicate: bool | None = None
    body: dict[str, Any] | None = None
    code: str | None = None
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None

    def as_json(self) -> dict[str, Any]:
        """The result without the fields that do not apply to it; `id` is always there."""
        found: dict[str, Any] = {"id": self.id, "status": self.status}
        for name in ("duplicate", "body", "code", "detail", "errors"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found


def validation_errors(error: ValidationError, prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic's errors as the problem body's `errors`, located in the event's own terms."""
    found = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = [str(part) for part in item["loc"]]
        if location and location[0] in EVENT_TYPES:  # the union's tag: not part of the body
            location = location[1:]
        if item["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            location = ["type"]
            item["msg"] = f"must be one of {', '.join(sorted(EVENT_TYPES))}"
        found.append({"loc": [*prefix, *location], "msg": item["msg"], "type": item["type"]})
    return found


def invalid(errors: list[dict[str, Any]]) -> ValidationFailed:
    """The refusal of an invalid event or batch, naming its first bad field."""
    first = errors[0]
    return ValidationFailed(f"{'.'.join(first['loc'])}: {first['msg']}", errors=errors)


def batch_events(payload: dict[str, Any]) -> list[Any]:
    """The events of a batch body `{"events": [...]}`, or the refusal of the whole batch."""
    try:
        return _BATCH.validate_python(payload).events
    except ValidationError as error:
        raise invalid(validation_errors(error, ("body",))) from error


def _refused(event_id: str | None, error: ServiceError) -> EventResult:
    return EventResult(
        id=event_id,
        status=error.status,
        code=error.code,
        detail=error.detail,
        errors=error.extra.get("errors"),
    )


def _parse(raw: Any) -> tuple[AnyEvent, str] | EventResult:
    """The validated event and its fingerprint, or the refusal of an invalid one."""
    event_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    try:
        event = _EVENT.validate_python(raw)
    except ValidationError as error:
        return _refused(event_id, invalid(validation_errors(error)))
    event_fingerprint = fingerprint(
        {"type": raw["type"], "occurred_at": raw["occurred_at"], "data": raw["data"]}
    )
    return event, event_fingerprint


_Parsed = tuple[int, AnyEvent, str]
"""An event to apply: its position in the batch, the event, its fingerprint."""


async def _as_event(apply: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """The refusals of an event, as `_AS_EVENT` names them."""
    try:
        return await apply()
    except (MemberNotFound, SaleNotFound) as error:
        raise _AS_EVENT[type(error)](error.detail) from error


async def _apply_alone(
    session: AsyncSession, caller: Principal, event: AnyEvent, event_fingerprint: str
) -> EventResult:
    write = event.write()
    try:
        outcome = await ledger.apply_once(
            session,
            caller.program_id,
            scope=Scope.EVENT,
            key=event.id,
            request_fingerprint=event_fingerprint,
            apply=lambda: _as_event(lambda: write.apply(session, caller)),
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
        event, event_fingerprint = parsed
        if not isinstance(event, MemberEnrolled | SaleCompleted):
            steps.append((index, event, event_fingerprint))
            continue
        if not steps or not isinstance(steps[-1], list) or event.id in ids_in_run:
            steps.append([])
            ids_in_run = set()
        last = steps[-1]
        assert isinstance(last, list)
        last.append((index, event, event_fingerprint))
        ids_in_run.add(event.id)
    if _changes_tree_after_volumes(steps):
        # A relabelling waits for every transaction that holds the labels of volume rows
        # (see sale_sql.HOLD_LABELS), and such a transaction may be waiting for a volume row
        # this batch wrote: hold the tree and its labels first, before writing any.
        await member_sql.lock_genealogy(session, caller.program_id)
        await sale_sql.lock_labels(session, caller.program_id)
    async with deferring_parked_deliveries(session, caller):
        for step in steps:
            if isinstance(step, list):
                await _apply_run(session, caller, step, results, with_bodies)
            else:
                index, event, event_fingerprint = step
                results[index] = await _apply_alone(session, caller, event, event_fingerprint)
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
        Scope.EVENT,
        [event.id for _, event, _ in ordered],
        [event_fingerprint for _, _, event_fingerprint in ordered],
    )
    applied_before = await intake_sql.find_applied_keys(
        session, program_id, Scope.EVENT, [e.id for _, e, _ in run if e.id not in claimed]
    )
    # A caller that only counts outcomes does not need remembered answers built again.
    rebuild = answers.rebuilder(session, program_id) if with_bodies else _no_body
    work: list[tuple[int, AnyEvent]] = []
    for index, event, event_fingerprint in run:
        if event.id in claimed:
            work.append((index, event))
            continue
        try:
            outcome = await ledger.replay(
                applied_before[event.id], Scope.EVENT, event.id, event_fingerprint, rebuild
            )
        except ServiceError as error:
            results[index] = _refused(event.id, error)
            continue
        results[index] = EventResult(
            id=event.id, status=outcome.status, duplicate=True, body=outcome.body
        )

    outcomes: dict[int, Outcome | ServiceError] = {}
    enrolments = [(i, e) for i, e in work if isinstance(e, MemberEnrolled)]
    enrolled = await members.enroll_many(
        session,
        program_id,
        [
            EnrollInput(
                e.data.id,
                e.data.sponsor_id,
                e.data.enrolled_at,
                e.data.name,
                e.data.referral_code,
                e.data.sponsor_code,
            )
            for _, e in enrolments
        ],
    )
    enrolled_at_position: dict[str, int] = {}
    for (index, enrolment), result in zip(enrolments, enrolled, strict=True):
        if isinstance(result, ServiceError):
            outcomes[index] = result
            continue
        outcomes[index] = answers.enrolment_outcome(result)
        if result.created:
            enrolled_at_position.setdefault(enrolment.data.id, index)

    sales_to_record: list[tuple[int, SaleCompleted]] = []
    for index, event in work:
        if not isinstance(event, SaleCompleted):
            continue
        if enrolled_at_position.get(event.data.member_id, -1) > index:
            # Its seller is enrolled by a later event: one at a time, it would be unknown.
            outcomes[index] = UnknownMember(
                f"member {event.data.member_id!r} is not enrolled in this program"
            )
            continue
        sales_to_record.append((index, event))
    recorded = await sales.record_sales(
        session, caller.program, [sale_input(e.data) for _, e in sales_to_record]
    )
    for (index, _), sale_result in zip(sales_to_record, recorded, strict=True):
        outcomes[index] = (
            sale_result
            if isinstance(sale_result, ServiceError)
            else answers.sale_outcome(sale_result, with_body=with_bodies)
        )

    remembered: list[tuple[str, int, dict[str, Any]]] = []
    withdrawn: list[str] = []
    created_sales: list[str] = []
    for index, event in work:
        done = outcomes[index]
        if isinstance(done, ServiceError):
            results[index] = _refused(event.id, done)
            withdrawn.append(event.id)
            continue
        results[index] = EventResult(
            id=event.id, status=done.status, duplicate=False, body=done.body
        )
        remembered.append((event.id, done.status, ledger.remembered(done)))
        if isinstance(event, SaleCompleted) and done.status == 201:
            created_sales.append(event.data.id)
    await intake_sql.answer_claims(session, program_id, Scope.EVENT, remembered)
    await intake_sql.withdraw_claims(session, program_id, Scope.EVENT, withdrawn)
    await parked_deliveries(
        session, caller, member_ids=list(enrolled_at_position), sale_ids=created_sales
    )
