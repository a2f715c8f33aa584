"""Dependencies: the request's transaction and the caller's program."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from service.db import failures
from service.db import programs as program_sql
from service.errors import Forbidden, ProgramNotFound, Unauthorized
from service.intake import signatures
from service.services import programs
from service.services.programs import Principal


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed here, before the response goes out, or rolled
    back when anything raised, so a refused request writes nothing.

    A request whose connection was lost (the server died or restarted) has nothing left to
    roll back: PostgreSQL dropped its transaction with the connection. The rollback's own
    failure is then ignored, so the request answers for the error it met
    (`database_unavailable`), and the pool opens a new connection for the next request."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException as error:
            try:
                await session.rollback()
            except Exception as lost:
                if not (failures.unavailable(lost) or failures.unavailable(error)):
                    raise
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API key of the program: `cmk_...`")


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def principal(
        session: SessionDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
        caller = await programs.authenticate(session, credentials.credentials)
        if not caller.allows(scope):
            raise Forbidden(f"this call needs the {scope!r} scope")
        return caller

    return principal


Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("events:write"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]


async def event_sender(
    session: AsyncSession, request: Request, body: bytes, program_id: str | None
) -> Principal:
    """Who sends events: an API key with `events:write`, or a Standard Webhooks signature
    made with one of the program's active secrets (the program named by `?program=`)."""
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
    if program is None or not await signatures.signature_is_valid(
        session, program_id, body, request.headers
    ):
        raise Unauthorized("the webhook signature is missing, stale, or not valid")
    return Principal(program=program, key_id="webhook", scopes=frozenset({"events:write"}))
