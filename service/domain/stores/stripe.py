"""Stripe: `invoice.paid` becomes a sale (residual volume: it names its subscription),
`charge.refunded` a refund of the sale of the charge's invoice.

A delivery is signed in `Stripe-Signature: t=...,v1=...`: the hex HMAC-SHA256 of
"{t}.{raw body}" under the endpoint secret (`whsec_...`, used as given). The timestamp must
be within 300 seconds of now, either way. The event id is the exactly-once key.

Amounts are integers in Stripe's minor units. Stripe's own exponent decides the conversion
(0 for its zero-decimal currencies, 3 for its three-decimal ones, else 2, also for ISK, HUF
and TWD, which Stripe writes with two decimals); the major amount must then be exact in the
engine's digits for the currency.
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from service.domain.money import EXACT, MAX_INTEGER_DIGITS
from service.domain.stores.common import (
    Attribution,
    Delivery,
    Integration,
    JsonObject,
    StoreError,
    StoreRefund,
    StoreSale,
    currency,
    distinct_codes,
    exact_amount,
    header,
    identifier,
    json_list,
    json_object,
    lower_headers,
    malformed,
    member_value,
    object_id,
    optional_object,
    parse_json,
    reference,
    text,
    unix_instant,
)

__all__ = [
    "CHARGE_REFUNDED",
    "INVOICE_PAID",
    "INVOICE_PAYMENT_PAID",
    "TOLERANCE",
    "minor_exponent",
    "read",
    "verify",
]

INVOICE_PAID: Final = "invoice.paid"
CHARGE_REFUNDED: Final = "charge.refunded"
INVOICE_PAYMENT_PAID: Final = "invoice_payment.paid"
TOLERANCE: Final = timedelta(seconds=300)
"""How far the signed timestamp may be from now, in the past or the future."""

_SIGNATURE: Final = "stripe-signature"
_MAX_TIMESTAMP_DIGITS: Final = 12
_ZERO_DECIMAL: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND"}
    | {"VUV", "XAF", "XOF", "XPF"}
)
_THREE_DECIMAL: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> bool:
    """Whether `Stripe-Signature` holds a v1 signature of "{t}.{body}" under the secret
    whose timestamp t is within `TOLERANCE` of `now` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    value = header(lower_headers(headers), _SIGNATURE)
    if not secret or value is None or not value.isascii():
        return False
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in value.split(","):
        name, _, given = item.strip().partition("=")
        if name == "t":
            timestamps.append(given)
        elif name == "v1":
            signatures.append(given)
    if len(timestamps) != 1 or not signatures:
        return False
    timestamp = timestamps[0]
    if not timestamp.isdigit() or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE.total_seconds():
        return False
    signed = timestamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode()
    return any(hmac.compare_digest(expected, given.encode()) for given in signatures)


def minor_exponent(code: str) -> int:
    """The decimal places of Stripe's integer amounts in the currency (USD 2, JPY 0,
    KWD 3, HUF 2)."""
    if code in _ZERO_DECIMAL:
        return 0
    return 3 if code in _THREE_DECIMAL else 2


def read(integration: Integration, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The sales and refunds of a (verified) Stripe event."""
    event = json_object(parse_json(body), "the event")
    event_id = identifier(event.get("id"), "event.id")
    kind = text(event.get("type"), "event.type")
    key = f"stripe:{event_id}"
    if kind not in (INVOICE_PAID, CHARGE_REFUNDED, INVOICE_PAYMENT_PAID):
        return Delivery("stripe", key, kind, ignored_reason="topic_not_handled")
    created = unix_instant(event.get("created"), "event.created")
    data = json_object(event.get("data"), "event.data")
    target = json_object(data.get("object"), "event.data.object")
    if kind == INVOICE_PAYMENT_PAID:
        return _invoice_payment(target, key)
    if kind == INVOICE_PAID:
        sale = _sale(target, created, integration.attribution_field)
        references = tuple((intent, sale.sale_id) for intent in sale.payment_intents)
        if sale.amount.is_zero():
            return Delivery(
                "stripe", key, kind, ignored_reason="zero_amount", references=references
            )
        return Delivery("stripe", key, kind, sales=(sale,), references=references)
    previous = optional_object(data.get("previous_attributes"), "event.data.previous_attributes")
    return _refund(target, previous, created, key)


def _invoice_payment(payment: JsonObject, key: str) -> Delivery:
    """An invoice payment (current API): which PaymentIntent paid which invoice."""
    invoice = reference(payment.get("invoice"), "invoice_payment.invoice")
    method = optional_object(payment.get("payment"), "invoice_payment.payment")
    intent = reference(method.get("payment_intent"), "invoice_payment.payment.payment_intent")
    if invoice is None or intent is None:
        return Delivery("stripe", key, INVOICE_PAYMENT_PAID, ignored_reason="no_invoice")
    sale_id = object_id(f"stripe:{invoice}", "the sale id")
    return Delivery("stripe", key, INVOICE_PAYMENT_PAID, references=((intent, sale_id),))


def _minor(value: object, where: str) -> int:
    """A non-negative integer amount in Stripe's minor units."""
    if isinstance(value, bool) or not isinstance(value, int):
        malformed(f"{where} must be an integer amount in minor units")
    if value < 0:
        raise StoreError("invalid_amount", f"{where} must not be negative")
    return value


def _major(minor: int, code: str, where: str) -> Decimal:
    """Stripe's minor units as an exact amount in major units (1000 USD is 10.00)."""
    exponent = minor_exponent(code)
    if minor >= 10 ** (MAX_INTEGER_DIGITS + exponent):
        raise StoreError(
            "invalid_amount", f"{where} has more than {MAX_INTEGER_DIGITS} integer digits"
        )
    return exact_amount(Decimal(minor).scaleb(-exponent, context=EXACT), code, where)


def _sale(invoice: JsonObject, created: datetime, attribution_field: str) -> StoreSale:
    """The paid invoice as a sale, dated when it was paid, else when the event was created."""
    invoice_id = identifier(invoice.get("id"), "invoice.id")
    code = currency(invoice.get("currency"), "invoice.currency")
    paid = _minor(invoice.get("amount_paid"), "invoice.amount_paid")
    transitions = optional_object(invoice.get("status_transitions"), "invoice.status_transitions")
    paid_at = transitions.get("paid_at")
    occurred_at = created
    if paid_at is not None:
        occurred_at = unix_instant(paid_at, "invoice.status_transitions.paid_at")
    parent = optional_object(invoice.get("parent"), "invoice.parent")
    current = optional_object(
        parent.get("subscription_details"), "invoice.parent.subscription_details"
    )
    older = optional_object(invoice.get("subscription_details"), "invoice.subscription_details")
    subscription = reference(invoice.get("subscription"), "invoice.subscription")
    if subscription is None:
        subscription = reference(
            current.get("subscription"), "invoice.parent.subscription_details.subscription"
        )
    return StoreSale(
        sale_id=object_id(f"stripe:{invoice_id}", "the sale id"),
        amount=_major(paid, code, "invoice.amount_paid"),
        currency=code,
        occurred_at=occurred_at,
        subscription_id=None if subscription is None else object_id(subscription, "subscription"),
        attribution=Attribution(
            member_id=_member(
                attribution_field,
                (invoice, "invoice"),
                (older, "invoice.subscription_details"),
                (current, "invoice.parent.subscription_details"),
            ),
            codes=_codes(invoice),
        ),
        payment_intents=_payment_intents(invoice),
    )


def _payment_intents(invoice: JsonObject) -> tuple[str, ...]:
    """The invoice's PaymentIntents: `payment_intent` (older API) and the entries of
    `payments` (the current API, when the payload includes them)."""
    found: list[str | None] = [reference(invoice.get("payment_intent"), "invoice.payment_intent")]
    payments = optional_object(invoice.get("payments"), "invoice.payments")
    for index, entry in enumerate(json_list(payments.get("data"), "invoice.payments.data")):
        if isinstance(entry, dict):
            payment = optional_object(entry.get("payment"), f"invoice.payments.data[{index}]")
            found.append(reference(payment.get("payment_intent"), "payment.payment_intent"))
    return tuple(dict.fromkeys(intent for intent in found if intent is not None))


def _member(attribution_field: str, *holders: tuple[JsonObject, str]) -> str | None:
    """The member id of the first metadata, in this order, that holds the field."""
    for holder, where in holders:
        metadata = optional_object(holder.get("metadata"), f"{where}.metadata")
        member_id = member_value(metadata.get(attribution_field))
        if member_id is not None:
            return member_id
    return None


def _codes(invoice: JsonObject) -> tuple[str, ...]:
    """The coupons and promotion codes of the invoice's discounts, as far as the payload
    shows them: `discount` (older API) and the expanded objects of `discounts` (bare
    discount ids "di_..." name no code)."""
    discounts = [(invoice.get("discount"), "invoice.discount")]
    discounts += [
        (entry, f"invoice.discounts[{index}]")
        for index, entry in enumerate(json_list(invoice.get("discounts"), "invoice.discounts"))
    ]
    codes: list[object] = []
    for entry, where in discounts:
        if not isinstance(entry, dict):
            continue
        source = optional_object(entry.get("source"), f"{where}.source")
        for coupon in (entry.get("coupon"), source.get("coupon")):
            if coupon is not None:
                codes.append(reference(coupon, f"{where}.coupon"))
        promotion = entry.get("promotion_code")
        if isinstance(promotion, dict):
            codes.append(promotion.get("code"))
    return distinct_codes(codes)


def _refund(charge: JsonObject, previous: JsonObject, created: datetime, key: str) -> Delivery:
    charge_id = identifier(charge.get("id"), "charge.id")
    code = currency(charge.get("currency"), "charge.currency")
    refunded = _minor(charge.get("amount_refunded"), "charge.amount_refunded")
    previously = previous.get("amount_refunded")
    before = 0 if previously is None else _minor(previously, "previous_attributes.amount_refunded")
    if refunded <= before:
        return Delivery("stripe", key, CHARGE_REFUNDED, ignored_reason="zero_amount")
    invoice = reference(charge.get("invoice"), "charge.invoice")
    payment_intent = reference(charge.get("payment_intent"), "charge.payment_intent")
    if invoice is None and payment_intent is None:
        return Delivery("stripe", key, CHARGE_REFUNDED, ignored_reason="no_invoice")
    refund = StoreRefund(
        refund_id=object_id(f"stripe:refund:{charge_id}:{refunded}", "the refund id"),
        sale_id=None if invoice is None else object_id(f"stripe:{invoice}", "the sale id"),
        payment_intent=payment_intent if invoice is None else None,
        amount=_major(refunded - before, code, "the newly refunded amount"),
        currency=code,
        occurred_at=created,
    )
    return Delivery("stripe", key, CHARGE_REFUNDED, refunds=(refund,))
