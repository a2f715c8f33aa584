"""SQL for webhook secrets and the memory of applied events and idempotency keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import applied_requests, webhook_secrets


@dataclass(frozen=True, slots=True)
class AppliedRequest:
    request_key: str
    fingerprint: str
    status: int
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SecretRow:
    secret_id: str
    secret: str
    created_at: datetime
    revoked_at: datetime | None


# Claims the keys not yet applied. The primary key serialises concurrent claims of one key:
# the second waits for the first transaction, and claims the key only if it rolled back.
_CLAIM = text(
    """
    INSERT INTO applied_requests (program_id, scope, request_key, fingerprint, status, response)
    SELECT :program_id, :scope, k.key, k.fingerprint, 0, '{}'::jsonb
    FROM unnest(CAST(:keys AS text[]), CAST(:fingerprints AS text[])) AS k(key, fingerprint)
    ON CONFLICT (program_id, scope, request_key) DO NOTHING
    RETURNING request_key
    """
)


async def claim(
    session: AsyncSession, program_id: str, scope: str, keys: list[str], fingerprints: list[str]
) -> set[str]:
    """Claim these keys for this transaction; answers those that were free."""
    if not keys:
        return set()
    rows = await session.execute(
        _CLAIM,
        {"program_id": program_id, "scope": scope, "keys": keys, "fingerprints": fingerprints},
    )
    return {row.request_key for row in rows}


_ANSWER = text(
    """
    UPDATE applied_requests a SET status = r.status, response = CAST(r.response AS jsonb)
    FROM unnest(CAST(:keys AS text[]), CAST(:statuses AS int[]), CAST(:responses AS text[]))
         AS r(key, status, response)
    WHERE a.program_id = :program_id AND a.scope = :scope AND a.request_key = r.key
      AND a.status = 0
    """
)


async def answer_claims(
    session: AsyncSession,
    program_id: str,
    scope: str,
    answers: list[tuple[str, int, dict[str, Any]]],
) -> None:
    """Complete claimed keys with what their requests answered: (key, status, body)."""
    if not answers:
        return
    await session.execute(
        _ANSWER,
        {
            "program_id": program_id,
            "scope": scope,
            "keys": [key for key, _, _ in answers],
            "statuses": [status for _, status, _ in answers],
            "responses": [json.dumps(body, separators=(",", ":")) for _, _, body in answers],
        },
    )


_WITHDRAW = text(
    """
    DELETE FROM applied_requests
    WHERE program_id = :program_id AND scope = :scope AND request_key = ANY(CAST(:keys AS text[]))
      AND status = 0
    """
)


async def withdraw_claims(
    session: AsyncSession, program_id: str, scope: str, keys: list[str]
) -> None:
    """Give back claims of requests that were refused: they may be sent again."""
    if keys:
        await session.execute(_WITHDRAW, {"program_id": program_id, "scope": scope, "keys": keys})


async def find_applied(
    session: AsyncSession, program_id: str, scope: str, key: str
) -> AppliedRequest | None:
    row = (
        await session.execute(
            select(
                applied_requests.c.request_key,
                applied_requests.c.fingerprint,
                applied_requests.c.status,
                applied_requests.c.response,
            ).where(
                applied_requests.c.program_id == program_id,
                applied_requests.c.scope == scope,
                applied_requests.c.request_key == key,
            )
        )
    ).one_or_none()
    return AppliedRequest(**row._mapping) if row is not None else None


async def find_applied_keys(
    session: AsyncSession, program_id: str, scope: str, keys: list[str]
) -> dict[str, AppliedRequest]:
    """The records of those keys that were applied, in one query."""
    if not keys:
        return {}
    rows = await session.execute(
        select(
            applied_requests.c.request_key,
            applied_requests.c.fingerprint,
            applied_requests.c.status,
            applied_requests.c.response,
        ).where(
            applied_requests.c.program_id == program_id,
            applied_requests.c.scope == scope,
            applied_requests.c.request_key.in_(keys),
        )
    )
    return {r.request_key: AppliedRequest(**r._mapping) for r in rows}


async def insert_secret(
    session: AsyncSession, program_id: str, *, secret_id: str, secret: str
) -> SecretRow:
    row = (
        await session.execute(
            insert(webhook_secrets)
            .values(program_id=program_id, secret_id=secret_id, secret=secret)
            .returning(
                webhook_secrets.c.secret_id,
                webhook_secrets.c.secret,
                webhook_secrets.c.created_at,
                webhook_secrets.c.revoked_at,
            )
        )
    ).one()
    return SecretRow(**row._mapping)


async def active_secrets(session: AsyncSession, program_id: str) -> list[SecretRow]:
    rows = await session.execute(
        select(
            webhook_secrets.c.secret_id,
            webhook_secrets.c.secret,
            webhook_secrets.c.created_at,
            webhook_secrets.c.revoked_at,
        )
        .where(webhook_secrets.c.program_id == program_id, webhook_secrets.c.revoked_at.is_(None))
        .order_by(webhook_secrets.c.created_at.desc())
    )
    return [SecretRow(**r._mapping) for r in rows]


async def all_secrets(session: AsyncSession, program_id: str) -> list[SecretRow]:
    rows = await session.execute(
        select(
            webhook_secrets.c.secret_id,
            webhook_secrets.c.secret,
            webhook_secrets.c.created_at,
            webhook_secrets.c.revoked_at,
        )
        .where(webhook_secrets.c.program_id == program_id)
        .order_by(webhook_secrets.c.created_at)
    )
    return [SecretRow(**r._mapping) for r in rows]


async def revoke_secret(session: AsyncSession, program_id: str, secret_id: str) -> bool:
    result = await session.execute(
        update(webhook_secrets)
        .where(
            webhook_secrets.c.program_id == program_id,
            webhook_secrets.c.secret_id == secret_id,
            webhook_secrets.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(webhook_secrets.c.secret_id)
    )
    return result.one_or_none() is not None
