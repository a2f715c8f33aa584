"""The five write routes answer through one function: applied once per Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from service.intake.writes import Write, apply_write
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


async def write_response(
    session: AsyncSession, caller: Principal, write: Write, idempotency_key: str | None
) -> JSONResponse:
    """Apply the write (once per key, when a key is given) and answer its outcome."""
    outcome = await apply_write(session, caller, write, idempotency_key=idempotency_key)
    return JSONResponse(outcome.body, status_code=outcome.status)
