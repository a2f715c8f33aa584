"""Exactly-once application of events and of REST calls that carry an Idempotency-Key."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from service.db import intake as intake_sql
from service.db.intake import AppliedRequest, SecretRow
from service.errors import EventConflict, IdempotencyConflict, SecretNotFound

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


def fingerprint(value: object) -> str:
    """Two requests are the same when their canonical JSON is."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def apply_once(
    session: AsyncSession,
    program_id: str,
    *,
    scope: str,
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
    found: AppliedRequest, scope: str, key: str, request_fingerprint: str, rebuild: Rebuild
) -> Outcome:
    """The first answer of an applied request, or a conflict when the body differs."""
    if found.fingerprint != request_fingerprint:
        if scope == EVENT:
            raise EventConflict(f"event {key!r} was applied with a different body")
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was used for another request")
    body = found.response
    if _REFERENCE in body:
        body = await rebuild(body[_REFERENCE])
    return Outcome(status=found.status, body=body, duplicate=True)


def new_secret() -> tuple[str, str]:
    """(id, secret): a Standard Webhooks secret, `whsec_` + base64 of 32 random bytes."""
    raw = secrets.token_bytes(32)
    return "whs_" + secrets.token_hex(6), "whsec_" + base64.b64encode(raw).decode()


async def create_secret(session: AsyncSession, program_id: str) -> SecretRow:
    secret_id, secret = new_secret()
    return await intake_sql.insert_secret(session, program_id, secret_id=secret_id, secret=secret)


async def revoke_secret(session: AsyncSession, program_id: str, secret_id: str) -> None:
    if not await intake_sql.revoke_secret(session, program_id, secret_id):
        raise SecretNotFound(f"program {program_id!r} has no active secret {secret_id!r}")


async def signature_is_valid(
    session: AsyncSession, program_id: str, body: bytes, headers: Mapping[str, str]
) -> bool:
    """True when the Standard Webhooks signature verifies with any of the program's active
    secrets (several are active while a secret rotates), within 5 minutes either way."""
    wanted = {
        name: headers[name]
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        if name in headers
    }
    secrets_ = await intake_sql.active_secrets(session, program_id)
    return any(_verifies(row.secret, body, wanted) for row in secrets_)


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception:  # a bad header, a stale timestamp, a wrong signature: all a "no"
        return False
    return True
