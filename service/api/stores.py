"""Store integrations: the endpoint a store's webhooks are pointed at, and the deliveries
it received."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from service.api.deps import Admin, Reader, SessionDep
from service.api.pagination import decode_cursor, encode_cursor
from service.api.problems import problem_responses
from service.api.schemas import Cursor, ListPage
from service.db import stores as store_sql
from service.db.stores import DeliveryRow
from service.errors import (
    DeliveryNotFound,
    IntegrationNotFound,
    InvalidCursor,
    InvalidStoreSignature,
)
from service.intake import stores
from service.intake.answers import instant

router = APIRouter(prefix="/v1", tags=["store integrations"])

IntegrationId = Annotated[
    str, Path(pattern=r"^int_[0-9a-f]{16}$", description="as `integration create` printed it")
]
DeliveryId = Annotated[str, Path(pattern=r"^dlv_[0-9a-f]{16}$")]
Status = Literal["applied", "parked", "refused", "received"]


class DeliveryReceived(BaseModel):
    """What the delivery came to. The platform only needs the 200: a parked or refused
    delivery is kept (see the deliveries list), so the platform does not retry it."""

    id: str | None = Field(description="the stored delivery (null: WooCommerce's ping)")
    topic: str
    status: Literal["applied", "parked", "refused", "received"]
    code: str | None
    detail: str | None
    sale_id: str | None
    duplicate: bool = Field(description="delivered before: this is what it came to then")


class DeliveryOut(BaseModel):
    id: str
    topic: str
    status: Literal["applied", "parked", "refused", "received"]
    code: str | None = Field(description="why it is refused, or what it waits for (parked)")
    detail: str | None
    received_at: str
    sale_id: str | None

    @classmethod
    def of(cls, row: DeliveryRow) -> DeliveryOut:
        return cls(
            id=row.delivery_id,
            topic=row.topic,
            status=row.status,
            code=row.code,
            detail=row.detail,
            received_at=instant(row.received_at),
            sale_id=row.sale_id,
        )


@router.post(
    "/integrations/{integration_id}/webhook",
    responses=problem_responses(IntegrationNotFound, InvalidStoreSignature),
    openapi_extra={"security": []},
)
async def receive_delivery(
    request: Request, session: SessionDep, integration_id: IntegrationId
) -> DeliveryReceived:
    """A store's webhook delivery, exactly as the platform sends it: no API key, the
    platform's own signature over the raw body (Shopify `X-Shopify-Hmac-Sha256`,
    WooCommerce `X-WC-Webhook-Signature`, Stripe `Stripe-Signature`). A bad or missing
    signature is 401 and nothing is stored. A signed delivery is stored first, then
    applied, and answered 200 whatever it came to: applied, parked (waiting for a member,
    sale or payment not known yet; applied when it arrives) or refused (kept with its
    code). A redelivery answers what the first delivery came to."""
    body = await request.body()
    received = await stores.receive(
        session, integration_id, request.headers, body, now=datetime.now(UTC)
    )
    return DeliveryReceived(**received.as_json())


async def _integration_of(session: SessionDep, program_id: str, integration_id: str) -> None:
    found = await store_sql.get_integration(session, integration_id)
    if found is None or found.program_id != program_id:
        raise IntegrationNotFound(f"the program has no integration {integration_id!r}")


@router.get(
    "/integrations/{integration_id}/deliveries",
    responses=problem_responses(IntegrationNotFound, InvalidCursor),
)
async def list_deliveries(
    session: SessionDep,
    caller: Reader,
    integration_id: IntegrationId,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> ListPage[DeliveryOut]:
    """The integration's deliveries, newest first, optionally of one status (`received`:
    stored, not applied yet; each later delivery to the integration retries those left so
    for a minute)."""
    await _integration_of(session, caller.program_id, integration_id)
    key = caller.program.cursor_key
    before = None
    if cursor is not None:
        asked, at, delivery_id = decode_cursor(key, cursor, "deliveries", 3)
        if asked != [integration_id, status] or not (
            isinstance(at, str) and isinstance(delivery_id, str)
        ):
            raise InvalidCursor("the cursor is not one this list gave out")
        try:
            before = (datetime.fromisoformat(at), delivery_id)
        except ValueError as error:
            raise InvalidCursor("the cursor is not one this list gave out") from error
    rows = await store_sql.list_deliveries(
        session, integration_id, status=status, before=before, limit=limit + 1
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            key,
            "deliveries",
            [integration_id, status],
            last.received_at.isoformat(),
            last.delivery_id,
        )
    return ListPage[DeliveryOut](items=[DeliveryOut.of(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/integrations/{integration_id}/deliveries/{delivery_id}/replay",
    responses=problem_responses(IntegrationNotFound, DeliveryNotFound),
)
async def replay_delivery(
    session: SessionDep, caller: Admin, integration_id: IntegrationId, delivery_id: DeliveryId
) -> DeliveryReceived:
    """Try a stored delivery again (after the cause of its refusal or parking was fixed):
    what it applied before is not applied twice."""
    await _integration_of(session, caller.program_id, integration_id)
    received = await stores.replay(session, caller.program_id, integration_id, delivery_id)
    return DeliveryReceived(**received.as_json())
