"""Shopify: `orders/paid` becomes a sale, `refunds/create` a refund of it.

A delivery is signed in `X-Shopify-Hmac-Sha256`: the base64 HMAC-SHA256 of the raw body
under the app's secret. Its topic is `X-Shopify-Topic`; it is the same delivery when it has
the same topic and `X-Shopify-Event-Id` (else `X-Shopify-Webhook-Id`).
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Final

from service.domain.money import EXACT
from service.domain.stores.common import (
    Attribution,
    Delivery,
    Integration,
    JsonObject,
    StoreRefund,
    StoreSale,
    base64_hmac_matches,
    bounded,
    currency,
    decimal,
    distinct_codes,
    exact_amount,
    header,
    identifier,
    iso_instant,
    json_list,
    json_object,
    lower_headers,
    malformed,
    member_value,
    object_id,
    optional_object,
    parse_json,
)

__all__ = ["ORDERS_PAID", "REFUNDS_CREATE", "read", "verify"]

ORDERS_PAID: Final = "orders/paid"
REFUNDS_CREATE: Final = "refunds/create"

_SIGNATURE: Final = "x-shopify-hmac-sha256"
_TOPIC: Final = "x-shopify-topic"
_EVENT_ID: Final = "x-shopify-event-id"
_WEBHOOK_ID: Final = "x-shopify-webhook-id"


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether `X-Shopify-Hmac-Sha256` signs the raw body under the secret."""
    return base64_hmac_matches(secret, body, header(lower_headers(headers), _SIGNATURE))


def read(integration: Integration, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The sales and refunds of a (verified) Shopify delivery."""
    named = lower_headers(headers)
    topic = header(named, _TOPIC)
    if topic is None:
        malformed("the X-Shopify-Topic header is missing")
    delivery_id = header(named, _EVENT_ID) or header(named, _WEBHOOK_ID)
    if delivery_id is None:
        malformed("the X-Shopify-Event-Id and X-Shopify-Webhook-Id headers are missing")
    key = f"shopify:{topic}:{delivery_id}"
    if topic == ORDERS_PAID:
        sale = _sale(json_object(parse_json(body), "the order"), integration.attribution_field)
        if sale.amount.is_zero():
            return Delivery("shopify", key, topic, ignored_reason="zero_amount")
        return Delivery("shopify", key, topic, sales=(sale,))
    if topic == REFUNDS_CREATE:
        refund = _refund(json_object(parse_json(body), "the refund"))
        if refund.amount.is_zero():
            return Delivery("shopify", key, topic, ignored_reason="zero_amount")
        return Delivery("shopify", key, topic, refunds=(refund,))
    return Delivery("shopify", key, topic, ignored_reason="topic_not_handled")


def _sale(order: JsonObject, attribution_field: str) -> StoreSale:
    order_id = identifier(order.get("id"), "order.id")
    code = currency(order.get("currency"), "order.currency")
    amount = decimal(order.get("subtotal_price"), "order.subtotal_price")
    return StoreSale(
        sale_id=object_id(f"shopify:{order_id}", "the sale id"),
        amount=exact_amount(amount, code, "order.subtotal_price"),
        currency=code,
        occurred_at=_processed_at(order, "order"),
        subscription_id=None,
        attribution=_attribution(order, attribution_field),
    )


def _attribution(order: JsonObject, attribution_field: str) -> Attribution:
    member_id = None
    for index, entry in enumerate(json_list(order.get("note_attributes"), "note_attributes")):
        attribute = json_object(entry, f"note_attributes[{index}]")
        if attribute.get("name") == attribution_field:
            member_id = member_value(attribute.get("value"))
            if member_id is not None:
                break
    codes = [
        json_object(entry, f"discount_codes[{index}]").get("code")
        for index, entry in enumerate(json_list(order.get("discount_codes"), "discount_codes"))
    ]
    applications = json_list(order.get("discount_applications"), "discount_applications")
    codes += [
        json_object(entry, f"discount_applications[{index}]").get("code")
        for index, entry in enumerate(applications)
    ]
    return Attribution(member_id=member_id, codes=distinct_codes(codes))


def _refund(refund: JsonObject) -> StoreRefund:
    refund_id = identifier(refund.get("id"), "refund.id")
    order_id = identifier(refund.get("order_id"), "refund.order_id")
    total = Decimal(0)
    codes: set[str] = set()
    lines = json_list(refund.get("refund_line_items"), "refund.refund_line_items")
    for index, entry in enumerate(lines):
        where = f"refund.refund_line_items[{index}]"
        line = json_object(entry, where)
        subtotal = decimal(line.get("subtotal"), f"{where}.subtotal")
        total = EXACT.add(total, bounded(subtotal, f"{where}.subtotal"))
        shop_money = optional_object(
            optional_object(line.get("subtotal_set"), f"{where}.subtotal_set").get("shop_money"),
            f"{where}.subtotal_set.shop_money",
        )
        if shop_money.get("currency_code") is not None:
            codes.add(currency(shop_money.get("currency_code"), f"{where}.subtotal_set"))
    if len(codes) > 1:
        malformed(f"the refund's line items are in several currencies: {sorted(codes)}")
    code = codes.pop() if codes else None
    amount = bounded(total, "the refund")
    if code is not None:
        amount = exact_amount(total, code, "the refund")
    return StoreRefund(
        refund_id=object_id(f"shopify:refund:{refund_id}", "the refund id"),
        sale_id=object_id(f"shopify:{order_id}", "the sale id"),
        payment_intent=None,
        amount=amount,
        currency=code,
        occurred_at=_processed_at(refund, "refund"),
    )


def _processed_at(resource: JsonObject, what: str) -> datetime:
    """`processed_at`, else `created_at`: ISO 8601 with an offset, read as UTC."""
    if resource.get("processed_at") is not None:
        return iso_instant(resource["processed_at"], f"{what}.processed_at", naive_is_utc=False)
    return iso_instant(resource.get("created_at"), f"{what}.created_at", naive_is_utc=False)
