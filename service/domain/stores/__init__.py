"""Store integrations, the pure part: verifying the signatures of webhook deliveries from
Shopify, WooCommerce and Stripe, and reading each platform's documented payloads as
platform-neutral sales and refunds (see docs/stores.md).

A caller receives a delivery as its headers and raw body bytes and either calls `receive`,
or, step by step: `is_ping` (answer OK, store nothing), `verify` (else 401), then
`read_delivery`. It then checks `check_currency` against the program's currency, resolves
each sale's attribution to a member (`check_attribution` when there is nothing to resolve)
and applies the sales and refunds, exactly once per `Delivery.delivery_key`.
"""

from collections.abc import Mapping
from datetime import datetime

from service.domain.stores import shopify, stripe, woocommerce
from service.domain.stores.common import (
    CATEGORY,
    DEFAULT_ATTRIBUTION_FIELD,
    PLATFORMS,
    Attribution,
    Delivery,
    ErrorCode,
    IgnoredReason,
    Integration,
    Platform,
    StoreError,
    StoreRefund,
    StoreSale,
)

__all__ = [
    "CATEGORY",
    "DEFAULT_ATTRIBUTION_FIELD",
    "PLATFORMS",
    "Attribution",
    "Delivery",
    "ErrorCode",
    "IgnoredReason",
    "Integration",
    "Platform",
    "StoreError",
    "StoreRefund",
    "StoreSale",
    "check_attribution",
    "check_currency",
    "is_ping",
    "read_delivery",
    "receive",
    "verify",
]


def verify(
    platform: Platform, secret: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> bool:
    """Whether the delivery is signed by the platform with the secret, over the raw body,
    compared in constant time. Header names are case-insensitive; a missing or malformed
    signature header is False, never an exception. `now` (aware) matters to Stripe only,
    whose signed timestamp must be within 300 seconds of it."""
    if platform == "shopify":
        return shopify.verify(secret, headers, body)
    if platform == "woocommerce":
        return woocommerce.verify(secret, headers, body)
    if platform == "stripe":
        return stripe.verify(secret, headers, body, now)
    raise ValueError(f"unknown store platform {platform!r}")


def is_ping(platform: Platform, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the delivery is WooCommerce's unsigned ping (`webhook_id=N`), sent when a
    webhook is saved: answer it OK and store nothing. Other platforms send no ping."""
    return platform == "woocommerce" and woocommerce.is_ping(headers, body)


def read_delivery(integration: Integration, headers: Mapping[str, str], body: bytes) -> Delivery:
    """The sales and refunds a verified delivery means (see docs/stores.md).

    Raises `StoreError` (`malformed_delivery`, `unsupported_currency`, `invalid_amount`)
    for a body that is not the documented shape.
    """
    if integration.platform == "shopify":
        return shopify.read(integration, headers, body)
    if integration.platform == "woocommerce":
        return woocommerce.read(integration, headers, body)
    return stripe.read(integration, headers, body)


def receive(
    integration: Integration, headers: Mapping[str, str], body: bytes, now: datetime
) -> Delivery:
    """`read_delivery` of a delivery that is a ping or verifies; else `StoreError` with
    code `invalid_signature`."""
    platform = integration.platform
    if is_ping(platform, headers, body):
        return Delivery(platform, None, "ping", ping=True)
    if not verify(platform, integration.secret, headers, body, now):
        raise StoreError("invalid_signature", f"the {platform} signature is missing or wrong")
    return read_delivery(integration, headers, body)


def check_currency(delivery: Delivery, currency: str) -> None:
    """Refuse (`currency_mismatch`) a delivery with a sale or refund in a currency other
    than the program's (a refund whose payload states no currency is in its sale's)."""
    for sale in delivery.sales:
        if sale.currency != currency:
            raise StoreError(
                "currency_mismatch",
                f"sale {sale.sale_id} is in {sale.currency}, the program in {currency}",
            )
    for refund in delivery.refunds:
        if refund.currency is not None and refund.currency != currency:
            raise StoreError(
                "currency_mismatch",
                f"refund {refund.refund_id} is in {refund.currency}, the program in {currency}",
            )


def check_attribution(sale: StoreSale) -> None:
    """Refuse (`no_attribution`) a sale that carries no member id and used no code."""
    if sale.attribution.missing:
        raise StoreError(
            "no_attribution",
            f"sale {sale.sale_id} names no member and used no code that could name one",
        )
