"""The exactly-once memory of applied requests: webhook events (by event id) and REST calls
that carry an Idempotency-Key (by key). A request is applied at most once, ever; a replay
answers what the first delivery answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import intake as intake_sql
from service.db.intake import AppliedRequest
from service.errors import EventConflict, IdempotencyConflict


class Scope(StrEnum):
    """Where a remembered key comes from: the two never collide."""

    EVENT = "event"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a request answered: the status and the JSON body.

    `stored` is what the memory of the request keeps in place of the body when the body can
    be built again from records that never change (see `Rebuild`); None: the body itself.
    """

    status: int
    body: dict[str, Any]
    duplicate: bool = False
    stored: dict[str, Any] | None = None


Rebuild = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Builds the body of a remembered answer again from what was stored in its place."""

_REFERENCE = "$answer"


def remembered(outcome: Outcome) -> dict[str, Any]:
    """What the memory of an applied request keeps of its answer."""
    return outcome.body if outcome.stored is None else {_REFERENCE: outcome.stored}


async def apply_once(
    session: AsyncSession,
    program_id: str,
    *,
    scope: Scope,
    key: str,
    request_fingerprint: str,
    apply: Callable[[], Awaitable[Outcome]],
    rebuild: Rebuild,
) -> Outcome:
    """Apply a request at most once, ever.

    The request first claims its key (a row that a concurrent delivery of the same key waits
    on until this transaction ends); its answer is written into that row in the same
    transaction as its effects, so either both are committed or neither. A refusal (any
    ServiceError) withdraws the claim and writes nothing, so the sender may retry later.
    """
    async with session.begin_nested():  # a refusal rolls back the claim with the rest
        if await intake_sql.claim(session, program_id, scope, [key], [request_fingerprint]):
            outcome = await apply()
            await intake_sql.answer_claims(
                session, program_id, scope, [(key, outcome.status, remembered(outcome))]
            )
            return outcome
    found = await intake_sql.find_applied(session, program_id, scope, key)
    assert found is not None  # the claim failed because a committed answer exists
    return await replay(found, scope, key, request_fingerprint, rebuild)


async def replay(
    found: AppliedRequest, scope: Scope, key: str, request_fingerprint: str, rebuild: Rebuild
) -> Outcome:
    """The first answer of an applied request, or a conflict when the body differs."""
    if found.fingerprint != request_fingerprint:
        if scope is Scope.EVENT:
            raise EventConflict(f"event {key!r} was applied with a different body")
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for another request")
    body = found.response
    if _REFERENCE in body:
        body = await rebuild(body[_REFERENCE])
    return Outcome(status=found.status, body=body, duplicate=True)
