"""The five writes, whichever way they come in: a REST call or a webhook event names one of
them, and it is applied by the same code (an event's `data` is the REST call's body)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.identity import fingerprint
from service.domain.stores import PLATFORMS
from service.errors import (
    CurrencyMismatch,
    EnrolledBeforeSponsor,
    GenealogyCycle,
    InvalidAmount,
    MemberExists,
    MemberNotFound,
    MemberTerminated,
    NoPlanInForce,
    ReferralCodeTaken,
    RefundBeforeSale,
    RefundConflict,
    RefundExceedsSale,
    SaleConflict,
    SaleNotFound,
    ServiceError,
    SponsorTerminated,
    UnknownMember,
    UnknownSponsor,
)
from service.intake import answers, ledger
from service.intake.ledger import Outcome, Scope
from service.intake.requests import (
    EnrollRequest,
    MoveRequest,
    RefundRequest,
    Request,
    SaleRequest,
    UpdateMemberRequest,
)
from service.services import members, sales
from service.services.programs import Principal
from service.services.sales import RefundInput, SaleInput

Refusals = tuple[type[ServiceError], ...]


class Write(Protocol):
    """A write request: what it asks, as the REST call names it, how it is applied, and the
    refusals applying it can answer (besides an invalid body)."""

    refusals: ClassVar[Refusals]

    @property
    def request_line(self) -> str: ...

    @property
    def body(self) -> Request: ...

    async def apply(self, session: AsyncSession, caller: Principal) -> Outcome: ...


@dataclass(frozen=True, slots=True)
class Enrol:
    body: EnrollRequest
    request_line = "POST /v1/members"
    refusals: ClassVar[Refusals] = (
        MemberExists,
        UnknownSponsor,
        SponsorTerminated,
        EnrolledBeforeSponsor,
        ReferralCodeTaken,
    )

    async def apply(self, session: AsyncSession, caller: Principal) -> Outcome:
        result = await members.enroll(
            session,
            caller.program_id,
            member_id=self.body.id,
            sponsor_id=self.body.sponsor_id,
            enrolled_at=self.body.enrolled_at,
            name=self.body.name,
            referral_code=self.body.referral_code,
            sponsor_code=self.body.sponsor_code,
        )
        if result.created:
            await parked_deliveries(session, caller, member_ids=[self.body.id])
        return answers.enrolment_outcome(result)


@dataclass(frozen=True, slots=True)
class UpdateMember:
    """Changes `status`, `name` and `referral_code` where the body sets them (`name: null`
    and `referral_code: null` clear them)."""

    member_id: str
    body: UpdateMemberRequest
    refusals: ClassVar[Refusals] = (MemberNotFound, MemberTerminated, ReferralCodeTaken)

    @property
    def request_line(self) -> str:
        return f"PATCH /v1/members/{self.member_id}"

    async def apply(self, session: AsyncSession, caller: Principal) -> Outcome:
        given = self.body.model_fields_set
        changes: dict[str, Any] = {}
        if "status" in given and self.body.status is not None:
            changes["status"] = self.body.status
        if "name" in given:
            changes["name"] = self.body.name
        if "referral_code" in given:
            changes["referral_code"] = self.body.referral_code
        row = await members.update(session, caller.program_id, self.member_id, **changes)
        return Outcome(answers.OK, answers.member_json(row))


@dataclass(frozen=True, slots=True)
class MoveMember:
    member_id: str
    body: MoveRequest
    refusals: ClassVar[Refusals] = (
        MemberNotFound,
        UnknownSponsor,
        SponsorTerminated,
        GenealogyCycle,
        EnrolledBeforeSponsor,
    )

    @property
    def request_line(self) -> str:
        return f"POST /v1/members/{self.member_id}/move"

    async def apply(self, session: AsyncSession, caller: Principal) -> Outcome:
        row = await members.move(
            session, caller.program_id, self.member_id, sponsor_id=self.body.sponsor_id
        )
        return Outcome(answers.OK, answers.member_json(row))


def sale_input(body: SaleRequest) -> SaleInput:
    return SaleInput(
        sale_id=body.id,
        member_id=body.member_id,
        amount=body.amount,
        currency=body.currency,
        volume=body.volume,
        category=body.category,
        subscription_id=body.subscription_id,
        customer=body.customer,
        occurred_at=body.occurred_at,
    )


@dataclass(frozen=True, slots=True)
class RecordSale:
    body: SaleRequest
    request_line = "POST /v1/sales"
    refusals: ClassVar[Refusals] = (
        SaleConflict,
        UnknownMember,
        NoPlanInForce,
        CurrencyMismatch,
        InvalidAmount,
    )

    async def apply(self, session: AsyncSession, caller: Principal) -> Outcome:
        recorded = await sales.record_sale(session, caller.program, sale_input(self.body))
        outcome = answers.sale_outcome(recorded)
        if outcome.status == 201:
            await parked_deliveries(session, caller, sale_ids=[self.body.id])
        return outcome


STORE_SALE_PREFIXES = tuple(f"{platform}:" for platform in PLATFORMS)


@dataclass(frozen=True, slots=True)
class _Woken:
    members: list[str]
    sales: list[str]


_DEFERRED: ContextVar[_Woken | None] = ContextVar("parked_deliveries_deferred", default=None)


async def parked_deliveries(
    session: AsyncSession,
    caller: Principal,
    *,
    member_ids: Sequence[str] = (),
    sale_ids: Sequence[str] = (),
) -> None:
    """Apply the store deliveries that were waiting for these new members or sales (within
    `deferring_parked_deliveries`: once its writes are done). Only a store's own sales (ids
    with its platform's prefix) can be waited for: the sales of the REST calls and events
    ask nothing more of the database."""
    store_sales = [sale_id for sale_id in sale_ids if sale_id.startswith(STORE_SALE_PREFIXES)]
    if not member_ids and not store_sales:
        return
    deferred = _DEFERRED.get()
    if deferred is not None:
        deferred.members.extend(member_ids)
        deferred.sales.extend(store_sales)
        return
    from service.intake import stores  # stores applies its deliveries through this module

    await stores.after_writes(session, caller, members=member_ids, sales=store_sales)


@asynccontextmanager
async def deferring_parked_deliveries(
    session: AsyncSession, caller: Principal
) -> AsyncIterator[None]:
    """Apply the deliveries woken by the writes within, after all of them: a batch of
    events may relabel the tree after an enrolment, and the tree's labels are taken before
    the parking lock, never after (see service/db/stores.py)."""
    woken = _Woken([], [])
    token = _DEFERRED.set(woken)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
    await parked_deliveries(session, caller, member_ids=woken.members, sale_ids=woken.sales)


@dataclass(frozen=True, slots=True)
class RefundSale:
    sale_id: str
    body: RefundRequest
    refusals: ClassVar[Refusals] = (
        SaleNotFound,
        RefundConflict,
        RefundBeforeSale,
        RefundExceedsSale,
        InvalidAmount,
    )

    @property
    def request_line(self) -> str:
        return f"POST /v1/sales/{self.sale_id}/refunds"

    async def apply(self, session: AsyncSession, caller: Principal) -> Outcome:
        refund = RefundInput(
            refund_id=self.body.id, amount=self.body.amount, occurred_at=self.body.occurred_at
        )
        recorded = await sales.refund_sale(session, caller.program, self.sale_id, refund)
        return answers.refund_outcome(recorded, caller.program.currency)


async def apply_write(
    session: AsyncSession, caller: Principal, write: Write, *, idempotency_key: str | None
) -> Outcome:
    """Apply a REST write; with an Idempotency-Key, once per key: a retry answers what the
    first call answered, and the same key with another request is a conflict."""
    if idempotency_key is None:
        return await write.apply(session, caller)
    return await ledger.apply_once(
        session,
        caller.program_id,
        scope=Scope.HTTP,
        key=idempotency_key,
        request_fingerprint=fingerprint([write.request_line, write.body.fingerprinted()]),
        apply=lambda: write.apply(session, caller),
        rebuild=answers.rebuilder(session, caller.program_id),
    )
