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


async def lock_request(session: AsyncSession, program_id: str, scope: str, key: str) -> None:
    """Serialise deliveries of the same event (or key) until this transaction ends: a
    concurrent duplicate waits here, then finds the first one's record."""
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock("
            "hashtextextended(:program_id || chr(31) || :scope || chr(31) || :key, 0))"
        ),
        {"program_id": program_id, "scope": scope, "key": key},
    )


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


async def remember(
    session: AsyncSession,
    program_id: str,
    scope: str,
    key: str,
    *,
    fingerprint: str,
    status: int,
    response: dict[str, Any],
) -> None:
    await session.execute(
        text(
            """
            INSERT INTO applied_requests
                (program_id, scope, request_key, fingerprint, status, response)
            VALUES (:program_id, :scope, :key, :fingerprint, :status, CAST(:response AS jsonb))
            """
        ),
        {
            "program_id": program_id,
            "scope": scope,
            "key": key,
            "fingerprint": fingerprint,
            "status": status,
            "response": json.dumps(response, separators=(",", ":")),
        },
    )


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
