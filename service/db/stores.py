"""SQL for store integrations: the integrations, their deliveries, and the references a
Stripe refund is resolved by."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class IntegrationRow:
    integration_id: str
    program_id: str
    platform: str
    secret: str = field(repr=False)  # the platform's HMAC key: never shown
    attribution_field: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    integration_id: str
    delivery_id: str
    program_id: str
    delivery_key: str
    topic: str
    status: str
    code: str | None
    detail: str | None
    waiting_for: str | None
    sale_id: str | None
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    updated_at: datetime


_INTEGRATION_COLUMNS = (
    "integration_id, program_id, platform, secret, attribution_field, created_at, revoked_at"
)
_DELIVERY_COLUMNS = (
    "integration_id, delivery_id, program_id, delivery_key, topic, status, code, detail,"
    " waiting_for, sale_id, headers, body, received_at, updated_at"
)

_INSERT_INTEGRATION = text(
    f"""
    INSERT INTO integrations (integration_id, program_id, platform, secret, attribution_field)
    VALUES (:integration_id, :program_id, :platform, :secret, :attribution_field)
    RETURNING {_INTEGRATION_COLUMNS}
    """  # noqa: S608 - constant SQL
)


async def insert_integration(
    session: AsyncSession,
    *,
    integration_id: str,
    program_id: str,
    platform: str,
    secret: str,
    attribution_field: str,
) -> IntegrationRow:
    row = (
        await session.execute(
            _INSERT_INTEGRATION,
            {
                "integration_id": integration_id,
                "program_id": program_id,
                "platform": platform,
                "secret": secret,
                "attribution_field": attribution_field,
            },
        )
    ).one()
    return IntegrationRow(*row)


_GET_INTEGRATION = text(
    f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE integration_id = :integration_id"  # noqa: S608
)


async def get_integration(session: AsyncSession, integration_id: str) -> IntegrationRow | None:
    row = (
        await session.execute(_GET_INTEGRATION, {"integration_id": integration_id})
    ).one_or_none()
    return None if row is None else IntegrationRow(*row)


_LIST_INTEGRATIONS = text(
    f"""
    SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE program_id = :program_id
    ORDER BY created_at, integration_id
    """  # noqa: S608
)


async def list_integrations(session: AsyncSession, program_id: str) -> list[IntegrationRow]:
    rows = await session.execute(_LIST_INTEGRATIONS, {"program_id": program_id})
    return [IntegrationRow(*row) for row in rows]


_REVOKE_INTEGRATION = text(
    """
    UPDATE integrations SET revoked_at = now()
    WHERE integration_id = :integration_id AND program_id = :program_id AND revoked_at IS NULL
    """
)


async def revoke_integration(session: AsyncSession, program_id: str, integration_id: str) -> bool:
    result = await session.execute(
        _REVOKE_INTEGRATION, {"integration_id": integration_id, "program_id": program_id}
    )
    return bool(getattr(result, "rowcount", 0))


# A delivery is stored once per platform delivery id: a redelivery finds the stored one.
_STORE_DELIVERY = text(
    f"""
    INSERT INTO store_deliveries (integration_id, delivery_id, program_id, delivery_key, topic,
                                  status, headers, body, updated_at)
    VALUES (:integration_id, :delivery_id, :program_id, :delivery_key, :topic, 'received',
            CAST(:headers AS jsonb), :body, now())
    ON CONFLICT (integration_id, delivery_key) DO NOTHING
    RETURNING {_DELIVERY_COLUMNS}
    """  # noqa: S608
)

_DELIVERY_BY_KEY = text(
    f"""
    SELECT {_DELIVERY_COLUMNS} FROM store_deliveries
    WHERE integration_id = :integration_id AND delivery_key = :delivery_key
    """  # noqa: S608
)


async def store_delivery(
    session: AsyncSession,
    *,
    integration_id: str,
    delivery_id: str,
    program_id: str,
    delivery_key: str,
    topic: str,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[DeliveryRow, bool]:
    """The delivery stored (`received`), and True; or the one stored before under the same
    platform delivery id, and False."""
    row = (
        await session.execute(
            _STORE_DELIVERY,
            {
                "integration_id": integration_id,
                "delivery_id": delivery_id,
                "program_id": program_id,
                "delivery_key": delivery_key,
                "topic": topic,
                "headers": json.dumps(dict(headers), sort_keys=True),
                "body": body,
            },
        )
    ).one_or_none()
    if row is not None:
        return _delivery(row), True
    found = (
        await session.execute(
            _DELIVERY_BY_KEY, {"integration_id": integration_id, "delivery_key": delivery_key}
        )
    ).one()
    return _delivery(found), False


def _delivery(row: Any) -> DeliveryRow:
    return DeliveryRow(*row)


_LOCK_DELIVERY = text(
    f"""
    SELECT {_DELIVERY_COLUMNS} FROM store_deliveries
    WHERE integration_id = :integration_id AND delivery_id = :delivery_id
    FOR UPDATE
    """  # noqa: S608
)


async def lock_delivery(
    session: AsyncSession, integration_id: str, delivery_id: str
) -> DeliveryRow | None:
    """The delivery, locked until the transaction ends (one applier at a time)."""
    row = (
        await session.execute(
            _LOCK_DELIVERY, {"integration_id": integration_id, "delivery_id": delivery_id}
        )
    ).one_or_none()
    return None if row is None else _delivery(row)


_SET_OUTCOME = text(
    """
    UPDATE store_deliveries
    SET status = :status, code = :code, detail = :detail, waiting_for = :waiting_for,
        sale_id = COALESCE(:sale_id, sale_id), updated_at = now()
    WHERE integration_id = :integration_id AND delivery_id = :delivery_id
    """
)


async def set_outcome(
    session: AsyncSession,
    integration_id: str,
    delivery_id: str,
    *,
    status: str,
    code: str | None,
    detail: str | None,
    waiting_for: str | None,
    sale_id: str | None,
) -> None:
    await session.execute(
        _SET_OUTCOME,
        {
            "integration_id": integration_id,
            "delivery_id": delivery_id,
            "status": status,
            "code": code,
            "detail": detail,
            "waiting_for": waiting_for,
            "sale_id": sale_id,
        },
    )


_LIST_DELIVERIES = text(
    f"""
    SELECT {_DELIVERY_COLUMNS} FROM store_deliveries
    WHERE integration_id = :integration_id
      AND (CAST(:status AS text) IS NULL OR status = :status)
      AND (CAST(:before_at AS timestamptz) IS NULL
           OR (received_at, delivery_id) < (:before_at, :before_id))
    ORDER BY received_at DESC, delivery_id DESC
    LIMIT :limit
    """  # noqa: S608
)


async def list_deliveries(
    session: AsyncSession,
    integration_id: str,
    *,
    status: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[DeliveryRow]:
    """The integration's deliveries, newest first, after the cursor `before`."""
    rows = await session.execute(
        _LIST_DELIVERIES,
        {
            "integration_id": integration_id,
            "status": status,
            "before_at": None if before is None else before[0],
            "before_id": "" if before is None else before[1],
            "limit": limit,
        },
    )
    return [_delivery(row) for row in rows]


_WAITING = text(
    """
    SELECT integration_id, delivery_id FROM store_deliveries
    WHERE program_id = :program_id AND status = 'parked' AND waiting_for = ANY(:waiting_for)
    ORDER BY received_at, delivery_id
    """
)


async def parked_for(
    session: AsyncSession, program_id: str, waiting_for: list[str]
) -> list[tuple[str, str]]:
    """The (integration id, delivery id) of the deliveries parked waiting for any of these,
    oldest first."""
    if not waiting_for:
        return []
    rows = await session.execute(
        _WAITING, {"program_id": program_id, "waiting_for": sorted(set(waiting_for))}
    )
    return [(row[0], row[1]) for row in rows]


# A program's parked deliveries and the writes they wait for are serialised by one lock: a
# delivery being applied holds it alone (after the tree labels, shared, as a sale holds
# them), and an enrolment or sale that may have woken a parked delivery holds it shared
# before it looks for one. So a delivery parked for a member is either seen by the
# enrolment of that member, or sees the member.
_PARKING = "hashtextextended('store-deliveries:' || :program_id, 0)"
_LOCK_PARKING = text(f"SELECT pg_advisory_xact_lock({_PARKING})")
# Shared, and only for a program with an integration (none: nothing can be parked).
_HOLD_PARKING = text(
    f"SELECT pg_advisory_xact_lock_shared({_PARKING}) FROM integrations"  # noqa: S608
    " WHERE program_id = :program_id LIMIT 1"
)


async def lock_parking(session: AsyncSession, program_id: str) -> None:
    await session.execute(_LOCK_PARKING, {"program_id": program_id})


async def hold_parking(session: AsyncSession, program_id: str) -> bool:
    """Hold the program's parking lock shared; False (nothing held): the program has no
    integration, so nothing is parked."""
    found = await session.execute(_HOLD_PARKING, {"program_id": program_id})
    return found.first() is not None


_STALE = text(
    """
    SELECT delivery_id FROM store_deliveries
    WHERE integration_id = :integration_id AND status = 'received'
      AND received_at < now() - make_interval(secs => :seconds)
    ORDER BY received_at, delivery_id
    LIMIT :limit
    """
)


async def stale_received(
    session: AsyncSession, integration_id: str, *, seconds: float, limit: int
) -> list[str]:
    """Deliveries stored but not applied for longer than `seconds` (the apply failed, and
    the platform may never deliver them again), oldest first."""
    rows = await session.execute(
        _STALE, {"integration_id": integration_id, "seconds": seconds, "limit": limit}
    )
    return [row[0] for row in rows]


_REMEMBER_REFERENCE = text(
    """
    INSERT INTO store_references (integration_id, reference, sale_id)
    VALUES (:integration_id, :reference, :sale_id)
    ON CONFLICT (integration_id, reference) DO NOTHING
    """
)

_REFERENCE = text(
    "SELECT sale_id FROM store_references"
    " WHERE integration_id = :integration_id AND reference = :reference"
)


async def remember_reference(
    session: AsyncSession, integration_id: str, reference: str, sale_id: str
) -> None:
    await session.execute(
        _REMEMBER_REFERENCE,
        {"integration_id": integration_id, "reference": reference, "sale_id": sale_id},
    )


async def referenced_sale(session: AsyncSession, integration_id: str, reference: str) -> str | None:
    found: str | None = (
        await session.execute(
            _REFERENCE, {"integration_id": integration_id, "reference": reference}
        )
    ).scalar_one_or_none()
    return found
