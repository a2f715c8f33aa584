"""Store integrations: a store's own webhook deliveries, verified, stored, and applied as
the sales and refunds they mean through the same events as `POST /v1/events`.

A correctly signed delivery is stored (`received`) and committed before anything else, so
that nothing the platform was told is lost: it is then applied in a transaction of its
own. Applied, it is `applied`; referring to a member, a sale or a payment not known yet it
is `parked`, and applied when that arrives (by the enrolment or sale that brings it, in
the order deliveries came, each once); refused for good, `refused` with the code the same
event would get from `/v1/events` (or `currency_mismatch`, `no_attribution`,
`malformed_delivery`). A redelivery of a stored delivery (the platform's delivery id) is
answered from what is stored, and applies a delivery left `received` by a crash.

The platforms' formats and signatures are read in `service.domain.stores`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import members as member_sql
from service.db import programs as program_sql
from service.db import sales as sale_sql
from service.db import stores as store_sql
from service.db.stores import DeliveryRow, IntegrationRow
from service.domain.stores import (
    PLATFORMS,
    Delivery,
    Integration,
    StoreError,
    check_currency,
    is_ping,
    read_delivery,
    verify,
)
from service.errors import (
    DeliveryNotFound,
    IntegrationNotFound,
    InvalidIntegration,
    InvalidStoreSignature,
    ProgramNotFound,
)
from service.intake import events as intake_events
from service.intake.answers import instant
from service.services.programs import Principal

__all__ = [
    "Received",
    "after_writes",
    "create_integration",
    "receive",
    "replay",
]

_KEPT_HEADERS = ("content-type", "x-shopify-", "x-wc-webhook-", "stripe-signature")
"""The headers a delivery is stored with: those its reading (and an audit) needs."""

_WAITING = {"unknown_member": "member", "unknown_sale": "sale"}

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A referral code as members hold them: an order's other codes can name no member."""

_KEY_LENGTH = 200
"""A platform delivery id longer than this is kept as its SHA-256 (it comes from headers)."""

_STALE_AFTER = 60.0
_STALE_BATCH = 5
"""Each delivery also applies up to this many of the integration's deliveries left stored
but not applied for a minute (an apply that failed: WooCommerce never delivers again)."""
"""Event refusals that mean "not known yet": the delivery is parked, not refused."""


@dataclass(frozen=True, slots=True)
class Received:
    """What a delivery came to: `status` applied, parked or refused (`ping` for
    WooCommerce's ping, which is not stored); `duplicate` when it was stored before."""

    delivery_id: str | None
    topic: str
    status: str
    code: str | None = None
    detail: str | None = None
    sale_id: str | None = None
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.delivery_id,
            "topic": self.topic,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "sale_id": self.sale_id,
            "duplicate": self.duplicate,
        }


def _received(row: DeliveryRow, *, duplicate: bool) -> Received:
    return Received(
        row.delivery_id, row.topic, row.status, row.code, row.detail, row.sale_id, duplicate
    )


async def create_integration(
    session: AsyncSession,
    program_id: str,
    *,
    platform: str,
    secret: str,
    attribution_field: str = "member_id",
) -> IntegrationRow:
    """Connect a store to the program; the secret is the platform's signing secret."""
    if await program_sql.get_program(session, program_id) is None:
        raise ProgramNotFound(f"program {program_id!r} does not exist")
    if platform not in PLATFORMS:
        raise InvalidIntegration(f"platform must be one of {', '.join(PLATFORMS)}")
    if not secret or secret != secret.strip():
        raise InvalidIntegration("the secret must be given, without surrounding blanks")
    field = attribution_field.strip()
    if not field or len(field) > 64:
        raise InvalidIntegration("the attribution field must be 1-64 characters")
    for other in await store_sql.list_integrations(session, program_id):
        if other.platform == platform and other.revoked_at is None:
            raise InvalidIntegration(
                f"the program is connected to {platform} already ({other.integration_id}):"
                " a store's order ids are unique only in that store, so a second one would"
                " pay its orders as the first's; revoke that integration first"
            )
    return await store_sql.insert_integration(
        session,
        integration_id="int_" + secrets.token_hex(8),
        program_id=program_id,
        platform=platform,
        secret=secret,
        attribution_field=field,
    )


async def _active(session: AsyncSession, integration_id: str) -> IntegrationRow:
    found = await store_sql.get_integration(session, integration_id)
    if found is None or found.revoked_at is not None:
        raise IntegrationNotFound(f"no active integration {integration_id!r}")
    return found


def _integration(row: IntegrationRow) -> Integration:
    return Integration(row.platform, row.secret, row.attribution_field)  # type: ignore[arg-type]


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in headers.items()
        if any(name.lower().startswith(kept) for kept in _KEPT_HEADERS)
    }


async def receive(
    session: AsyncSession,
    integration_id: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
) -> Received:
    """A delivery to the integration's endpoint: verified, stored and committed, then
    applied (in the session's next transaction, which the caller commits)."""
    row = await _active(session, integration_id)
    integration = _integration(row)
    if is_ping(integration.platform, headers, body):
        return Received(None, "ping", "applied")
    if not verify(integration.platform, integration.secret, headers, body, now):
        raise InvalidStoreSignature(f"the {integration.platform} signature is missing or wrong")
    try:
        key, topic = _identity(read_delivery(integration, headers, body))
    except Exception as error:  # stored all the same, as refused: the admin can look
        code, detail = (
            (error.code, error.detail)
            if isinstance(error, StoreError)
            else ("malformed_delivery", "the body is not the platform's documented shape")
        )
        key, topic = "body:" + hashlib.sha256(body).hexdigest(), "unreadable"
        stored, new = await _store(session, row, key, topic, headers, body)
        if new:
            await store_sql.set_outcome(
                session,
                row.integration_id,
                stored.delivery_id,
                status="refused",
                code=code,
                detail=detail,
                waiting_for=None,
                sale_id=None,
            )
            await session.commit()
            return Received(stored.delivery_id, topic, "refused", code, detail)
        return _received(stored, duplicate=True)
    stored, new = await _store(session, row, key, topic, headers, body)
    await session.commit()  # stored before it is applied: a crash now loses nothing
    received = await _apply(session, row, stored.delivery_id, duplicate=not new, lock=True)
    for stale in await store_sql.stale_received(
        session, row.integration_id, seconds=_STALE_AFTER, limit=_STALE_BATCH
    ):
        if stale != stored.delivery_id:
            await _apply(session, row, stale, duplicate=False, lock=True)
    return received


def _identity(delivery: Delivery) -> tuple[str, str]:
    key = delivery.delivery_key
    assert key is not None
    if len(key) > _KEY_LENGTH:
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key, delivery.topic[:_KEY_LENGTH]


async def _store(
    session: AsyncSession,
    row: IntegrationRow,
    key: str,
    topic: str,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[DeliveryRow, bool]:
    return await store_sql.store_delivery(
        session,
        integration_id=row.integration_id,
        delivery_id="dlv_" + secrets.token_hex(8),
        program_id=row.program_id,
        delivery_key=key,
        topic=topic,
        headers=_kept(headers),
        body=body,
    )


async def replay(
    session: AsyncSession, program_id: str, integration_id: str, delivery_id: str
) -> Received:
    """Try a stored delivery again, whatever it came to (after the admin fixed the cause);
    what it applied before is not applied twice (its events are remembered)."""
    row = await _active(session, integration_id)
    if row.program_id != program_id:
        raise IntegrationNotFound(f"no active integration {integration_id!r}")
    return await _apply(session, row, delivery_id, duplicate=False, again=True, lock=True)


async def _apply(
    session: AsyncSession,
    row: IntegrationRow,
    delivery_id: str,
    *,
    duplicate: bool,
    again: bool = False,
    lock: bool = False,
) -> Received:
    """Apply the stored delivery, under its row's lock (one applier at a time); a delivery
    applied or refused before answers as it is, unless tried `again`. With `lock`, the
    program's parking lock is taken alone first (after the tree labels, shared, in the
    order a sale takes them); without, the caller holds it shared (`after_writes`)."""
    if lock:
        await session.execute(sale_sql.HOLD_LABELS, {"program_id": row.program_id})
        await store_sql.lock_parking(session, row.program_id)
    stored = await store_sql.lock_delivery(session, row.integration_id, delivery_id)
    if stored is None:
        raise DeliveryNotFound(f"integration {row.integration_id!r} has no {delivery_id!r}")
    if stored.status in ("applied", "refused") and not again:
        return _received(stored, duplicate=duplicate)
    program = await program_sql.get_program(session, row.program_id)
    assert program is not None
    caller = Principal(program, row.integration_id, frozenset({"events:write"}))
    status, code, detail, waiting, sale_id = await _outcome(session, caller, row, stored)
    await store_sql.set_outcome(
        session,
        row.integration_id,
        delivery_id,
        status=status,
        code=code,
        detail=detail,
        waiting_for=waiting,
        sale_id=sale_id,
    )
    return Received(
        delivery_id, stored.topic, status, code, detail, sale_id or stored.sale_id, duplicate
    )


Outcome = tuple[str, str | None, str | None, str | None, str | None]
"""(status, code, detail, waiting for, sale id)."""


async def _outcome(
    session: AsyncSession, caller: Principal, row: IntegrationRow, stored: DeliveryRow
) -> Outcome:
    try:
        delivery = read_delivery(_integration(row), stored.headers, stored.body)
        check_currency(delivery, caller.program.currency)
    except StoreError as error:
        return "refused", error.code, error.detail, None, None
    for intent, sale_id in delivery.references:
        await store_sql.remember_reference(session, row.integration_id, intent, sale_id)
    sale_ids = [sale.sale_id for sale in delivery.sales]
    events: list[dict[str, Any]] = []
    for sale in delivery.sales:
        member_id = sale.attribution.member_id
        codes = [code for code in sale.attribution.codes if _CODE.fullmatch(code)]
        if member_id is None and codes:
            found = await member_sql.members_by_referral_code(session, caller.program_id, codes)
            member_id = next(
                (found[c.lower()].member_id for c in codes if c.lower() in found), None
            )
        if member_id is None:
            used = f"no code a member holds ({len(sale.attribution.codes)} used)"
            detail = f"sale {sale.sale_id} names no member and {used}"
            return "refused", "no_attribution", detail, None, sale.sale_id
        data: dict[str, Any] = {
            "id": sale.sale_id,
            "member_id": member_id,
            "amount": format(sale.amount, "f"),
            "currency": sale.currency,
            "category": sale.category,
            "occurred_at": instant(sale.occurred_at),
        }
        if sale.subscription_id is not None:
            data["subscription_id"] = sale.subscription_id
        events.append(
            {
                "id": sale.sale_id,
                "type": "sale.completed",
                "occurred_at": data["occurred_at"],
                "data": data,
            }
        )
    for refund in delivery.refunds:
        refunded: str | None = refund.sale_id
        if refunded is None:
            assert refund.payment_intent is not None
            refunded = await store_sql.referenced_sale(
                session, row.integration_id, refund.payment_intent
            )
            if refunded is None:
                return (
                    "parked",
                    "unknown_sale",
                    f"no sale is known for PaymentIntent {refund.payment_intent}",
                    f"payment_intent:{refund.payment_intent}",
                    None,
                )
        sale_ids.append(refunded)
        occurred = instant(refund.occurred_at)
        events.append(
            {
                "id": refund.refund_id,
                "type": "sale.refunded",
                "occurred_at": occurred,
                "data": {
                    "sale_id": refunded,
                    "id": refund.refund_id,
                    "amount": format(refund.amount, "f"),
                    "occurred_at": occurred,
                },
            }
        )
    first_sale = sale_ids[0] if sale_ids else None
    if not events:
        await _told(session, caller, delivery)
        return "applied", None, delivery.ignored_reason, None, first_sale
    results = await intake_events.apply_events(session, caller, events)
    for event, result in zip(events, results, strict=True):
        if result.code is None:
            continue
        waiting = _WAITING.get(result.code)
        if waiting is not None:
            data = event["data"]
            awaited = data["member_id"] if waiting == "member" else data["sale_id"]
            return "parked", result.code, result.detail, f"{waiting}:{awaited}", first_sale
        return "refused", result.code, result.detail, None, first_sale
    await _told(session, caller, delivery)
    return "applied", None, None, None, first_sale


async def _told(session: AsyncSession, caller: Principal, delivery: Delivery) -> None:
    """Apply what waited for the payments this delivery told the sales of."""
    if delivery.references:
        await after_writes(
            session, caller, references=[f"payment_intent:{i}" for i, _ in delivery.references]
        )


async def after_writes(
    session: AsyncSession,
    caller: Principal,
    *,
    members: Sequence[str] = (),
    sales: Sequence[str] = (),
    references: Sequence[str] = (),
) -> None:
    """Apply the deliveries parked waiting for these newly enrolled members, recorded
    sales or payments, oldest first, each once (under its row's lock, in this
    transaction), holding the program's parking lock shared."""
    if not await store_sql.hold_parking(session, caller.program_id):
        return
    waiting = [
        *(f"member:{m}" for m in members),
        *(f"sale:{s}" for s in sales),
        *references,
    ]
    for integration_id, delivery_id in await store_sql.parked_for(
        session, caller.program_id, waiting
    ):
        row = await store_sql.get_integration(session, integration_id)
        if row is None or row.revoked_at is not None:
            continue
        await _apply(session, row, delivery_id, duplicate=False, again=False)
