"""WooCommerce: an order webhook (`order.created`, `order.updated`, `order.restored`)
carries the whole order (the REST API v3 order object). A processing or completed order is
a sale; each entry of its `refunds` is a refund of that sale, whatever the status.

A delivery is signed in `X-WC-Webhook-Signature`: the base64 HMAC-SHA256 of the raw body.
WooCommerce gives every delivery a new `X-WC-Webhook-Delivery-ID`, retries included, so the
exactly-once key is read from the content: the order, its status and its refund ids.
"""

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from service.domain.money import EXACT
from service.domain.stores.common import (
    Attribution,
    Delivery,
    IgnoredReason,
    Integration,
    JsonObject,
    StoreRefund,
    StoreSale,
    base64_hmac_matches,
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
    parse_json,
    text,
)

__all__ = ["ORDER_TOPICS", "PAID_STATUSES", "is_ping", "read", "verify"]

ORDER_TOPICS: Final = frozenset({"order.created", "order.updated", "order.restored"})
PAID_STATUSES: Final = frozenset({"processing", "completed"})

_SIGNATURE: Final = "x-wc-webhook-signature"
_TOPIC: Final = "x-wc-webhook-topic"
_RESOURCE: Final = "x-wc-webhook-resource"
_EVENT: Final = "x-wc-webhook-event"
_DELIVERY_ID: Final = "x-wc-webhook-delivery-id"
_FORM: Final = "application/x-www-form-urlencoded"
_PING: Final = re.compile(rb"webhook_id=[0-9]{1,20}")


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether `X-WC-Webhook-Signature` signs the raw body under the secret."""
    return base64_hmac_matches(secret, body, header(lower_headers(headers), _SIGNATURE))


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """Whether this is the ping WooCommerce sends when a webhook is saved: the form body
    `webhook_id=N`, unsigned. It is answered OK and nothing is stored."""
    content_type = header(lower_headers(headers), "content-type")
    if content_type is not None and content_type.partition(";")[0].strip().lower() != _FORM:
        return False
    return _PING.fullmatch(body.strip()) is not None


def read(integration: Integration, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The sales and refunds of a (verified) WooCommerce delivery."""
    if is_ping(headers, body):
        return Delivery("woocommerce", None, "ping", ping=True)
    named = lower_headers(headers)
    topic = header(named, _TOPIC)
    if topic is None:
        resource, event = header(named, _RESOURCE), header(named, _EVENT)
        if resource is None or event is None:
            malformed("the X-WC-Webhook-Topic header is missing")
        topic = f"{resource}.{event}"
    if topic not in ORDER_TOPICS:
        delivery_id = header(named, _DELIVERY_ID) or hashlib.sha256(body).hexdigest()
        key = f"woocommerce:{topic}:{delivery_id}"
        return Delivery("woocommerce", key, topic, ignored_reason="topic_not_handled")
    return _order(json_object(parse_json(body), "the order"), topic, integration)


def _order(order: JsonObject, topic: str, integration: Integration) -> Delivery:
    order_id = identifier(order.get("id"), "order.id")
    status = text(order.get("status"), "order.status")
    code = currency(order.get("currency"), "order.currency")
    sale_id = object_id(f"woocommerce:{order_id}", "the sale id")
    occurred_at = _paid_at(order)
    refunds = _refunds(order, sale_id, code, occurred_at)
    refund_ids = ",".join(
        sorted((refund.refund_id.rpartition(":")[2] for refund in refunds), key=_numeric)
    )
    key = f"woocommerce:{order_id}:{status}:{refund_ids}"
    sales: tuple[StoreSale, ...] = ()
    if status in PAID_STATUSES:
        total, tax, shipping = (
            exact_amount(decimal(order.get(name), f"order.{name}"), code, f"order.{name}")
            for name in ("total", "total_tax", "shipping_total")
        )
        net = EXACT.subtract(EXACT.subtract(total, tax), shipping)
        amount = exact_amount(net, code, "order total - tax - shipping")
        if not amount.is_zero():
            sale = StoreSale(
                sale_id=sale_id,
                amount=amount,
                currency=code,
                occurred_at=occurred_at,
                subscription_id=None,
                attribution=_attribution(order, integration.attribution_field),
            )
            sales = (sale,)
    if sales or refunds:
        return Delivery("woocommerce", key, topic, sales=sales, refunds=refunds)
    reason: IgnoredReason = "zero_amount" if status in PAID_STATUSES else "not_paid"
    return Delivery("woocommerce", key, topic, ignored_reason=reason)


def _paid_at(order: JsonObject) -> datetime:
    """When the order was paid (`date_paid_gmt`), else created (`date_created_gmt`)."""
    if order.get("date_paid_gmt") is not None:
        return iso_instant(order.get("date_paid_gmt"), "order.date_paid_gmt", naive_is_utc=True)
    return iso_instant(order.get("date_created_gmt"), "order.date_created_gmt", naive_is_utc=True)


def _refunds(
    order: JsonObject, sale_id: str, code: str, occurred_at: datetime
) -> tuple[StoreRefund, ...]:
    """The order's refunds. The order lists them without a date, so each one is dated by
    its sale: the same refund reads the same in every later delivery of the order."""
    found: list[StoreRefund] = []
    for index, entry in enumerate(json_list(order.get("refunds"), "order.refunds")):
        where = f"order.refunds[{index}]"
        refund = json_object(entry, where)
        refund_id = identifier(refund.get("id"), f"{where}.id")
        total = decimal(refund.get("total"), f"{where}.total")
        amount = exact_amount(abs(total), code, f"{where}.total")
        if amount.is_zero():
            continue
        found.append(
            StoreRefund(
                refund_id=object_id(f"woocommerce:refund:{refund_id}", "the refund id"),
                sale_id=sale_id,
                payment_intent=None,
                amount=amount,
                currency=code,
                occurred_at=occurred_at,
            )
        )
    return tuple(found)


def _attribution(order: JsonObject, attribution_field: str) -> Attribution:
    member_id = None
    for index, entry in enumerate(json_list(order.get("meta_data"), "order.meta_data")):
        meta = json_object(entry, f"order.meta_data[{index}]")
        if meta.get("key") == attribution_field:
            member_id = member_value(meta.get("value"))
            if member_id is not None:
                break
    coupons = json_list(order.get("coupon_lines"), "order.coupon_lines")
    codes = [
        json_object(entry, f"order.coupon_lines[{index}]").get("code")
        for index, entry in enumerate(coupons)
    ]
    return Attribution(member_id=member_id, codes=distinct_codes(codes))


def _numeric(refund_id: str) -> tuple[int, str]:
    """Ids in numeric order ("99" before "100")."""
    return (len(refund_id), refund_id)
