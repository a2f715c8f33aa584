"""REST calls with an Idempotency-Key are applied once; a retry gets the first answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.api import answers
from service.services import intake
from service.services.intake import Outcome
from service.services.programs import Principal

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Apply this request once: a retry with the same key answers the first "
        "answer; the same key with another request is 409 idempotency_conflict.",
    ),
]


async def answer(
    session: AsyncSession,
    caller: Principal,
    key: str | None,
    *,
    request: str,
    body: BaseModel,
    apply: Callable[[], Awaitable[Outcome]],
) -> JSONResponse:
    """Apply the call (once per key, when a key is given) and answer its outcome."""
    if key is None:
        outcome = await apply()
    else:
        outcome = await intake.apply_once(
            session,
            caller.program_id,
            scope=intake.HTTP,
            key=key,
            request_fingerprint=intake.fingerprint([request, body.model_dump(mode="json")]),
            apply=apply,
            rebuild=answers.rebuilder(session, caller.program_id),
        )
    return JSONResponse(outcome.body, status_code=outcome.status)
