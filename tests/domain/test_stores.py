"""Store integrations: signatures and the mapping of Shopify, WooCommerce and Stripe
deliveries, on the platforms' published sample payloads (tests/domain/stores/)."""

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.domain.stores import (
    Attribution,
    Delivery,
    Integration,
    StoreError,
    StoreRefund,
    StoreSale,
    check_attribution,
    check_currency,
    is_ping,
    read_delivery,
    receive,
    verify,
)
from service.domain.stores.stripe import minor_exponent

FIXTURES = Path(__file__).parent / "stores"

SHOPIFY_SECRET = "8f2c0e5d4b3a19f7e6d5c4b3a2918f7e"
WOO_SECRET = "wc-webhook-secret: Kq9!dZ"
STRIPE_SECRET = "whsec_5f8a9e1b7c3d2f4e6a8b0c1d3e5f7a9b"

SHOPIFY = Integration("shopify", SHOPIFY_SECRET)
WOO = Integration("woocommerce", WOO_SECRET)
STRIPE = Integration("stripe", STRIPE_SECRET)

NOW = datetime(2025, 7, 15, 16, 0, tzinfo=UTC)


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def document(name: str) -> Any:
    return json.loads(body_of(name))


def headers_of(name: str) -> dict[str, str]:
    headers: dict[str, str] = json.loads(body_of(name))
    return headers


def encoded(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False).encode()


def base64_hmac(secret: str, body: bytes) -> str:
    """How Shopify and WooCommerce sign: base64 of HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify(headers_name: str, body: bytes, secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    return headers_of(f"shopify/{headers_name}") | {
        "X-Shopify-Hmac-Sha256": base64_hmac(secret, body)
    }


def woo(body: bytes, secret: str = WOO_SECRET) -> dict[str, str]:
    return headers_of("woocommerce/order.headers.json") | {
        "X-WC-Webhook-Signature": base64_hmac(secret, body)
    }


def stripe_v1(secret: str, body: bytes, timestamp: int) -> str:
    """How Stripe signs: hex HMAC-SHA256 of "{t}.{raw body}" under the whole secret."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def stripe(
    body: bytes, timestamp: int | None = None, secret: str = STRIPE_SECRET
) -> dict[str, str]:
    t = int(NOW.timestamp()) if timestamp is None else timestamp
    signature = f"t={t},v1={stripe_v1(secret, body, t)}"
    return headers_of("stripe/headers.json") | {"Stripe-Signature": signature}


# Signatures


def test_a_shopify_delivery_signed_with_the_secret_verifies() -> None:
    body = body_of("shopify/orders_paid.json")
    assert verify("shopify", SHOPIFY_SECRET, shopify("orders_paid.headers.json", body), body, NOW)


def test_a_woocommerce_delivery_signed_with_the_secret_verifies() -> None:
    body = body_of("woocommerce/order_727.json")
    assert verify("woocommerce", WOO_SECRET, woo(body), body, NOW)


def test_a_stripe_event_signed_with_the_secret_verifies() -> None:
    body = body_of("stripe/invoice_paid.json")
    assert verify("stripe", STRIPE_SECRET, stripe(body), body, NOW)


@pytest.mark.parametrize(
    "tamper",
    ["other secret", "body changed", "no header", "blank header", "not base64", "not ascii"],
)
def test_a_bad_shopify_or_woocommerce_signature_is_false(tamper: str) -> None:
    body = body_of("shopify/orders_paid.json")
    headers = shopify("orders_paid.headers.json", body)
    woo_headers = woo(body)
    if tamper == "other secret":
        headers = shopify("orders_paid.headers.json", body, secret="another app's secret")
        woo_headers = woo(body, secret="another webhook's secret")
    elif tamper == "body changed":
        body = body.replace(b'"404.95"', b'"4049.50"')
    elif tamper == "no header":
        del headers["X-Shopify-Hmac-Sha256"], woo_headers["X-WC-Webhook-Signature"]
    else:
        value = {"blank header": "  ", "not base64": "%%%", "not ascii": "sïgnature"}[tamper]
        headers["X-Shopify-Hmac-Sha256"] = woo_headers["X-WC-Webhook-Signature"] = value
    assert not verify("shopify", SHOPIFY_SECRET, headers, body, NOW)
    assert not verify("woocommerce", WOO_SECRET, woo_headers, body, NOW)


def test_an_empty_secret_verifies_nothing() -> None:
    body = body_of("woocommerce/order_727.json")
    assert not verify("woocommerce", "", woo(body, secret=""), body, NOW)
    assert not verify("stripe", "", stripe(body, secret=""), body, NOW)


def test_header_names_are_case_insensitive() -> None:
    body = body_of("shopify/orders_paid.json")
    for name in ("x-shopify-hmac-sha256", "X-SHOPIFY-HMAC-SHA256", "X-Shopify-HMAC-SHA256"):
        headers = {name: base64_hmac(SHOPIFY_SECRET, body)}
        assert verify("shopify", SHOPIFY_SECRET, headers, body, NOW)
    stripe_body = body_of("stripe/invoice_paid.json")
    signature = stripe(stripe_body)["Stripe-Signature"]
    assert verify("stripe", STRIPE_SECRET, {"STRIPE-SIGNATURE": signature}, stripe_body, NOW)
    lower = {
        name.lower(): value for name, value in shopify("orders_paid.headers.json", body).items()
    }
    assert read_delivery(SHOPIFY, lower, body).delivery_key == (
        "shopify:orders/paid:59d6d79c-595f-4e7e-bc6f-72f5c3d0c66f"
    )


@pytest.mark.parametrize(
    ("age", "accepted"), [(-300, True), (300, True), (301, False), (-301, False)]
)
def test_a_stripe_timestamp_more_than_300_seconds_from_now_is_refused(
    age: int, accepted: bool
) -> None:
    body = body_of("stripe/invoice_paid.json")
    headers = stripe(body, timestamp=int(NOW.timestamp()) - age)
    assert verify("stripe", STRIPE_SECRET, headers, body, NOW) is accepted


def test_a_stale_stripe_signature_is_refused_even_when_it_is_right() -> None:
    body = body_of("stripe/invoice_paid.json")
    headers = stripe(body, timestamp=int(NOW.timestamp()) - 3600)
    assert not verify("stripe", STRIPE_SECRET, headers, body, NOW)
    assert verify("stripe", STRIPE_SECRET, headers, body, NOW - timedelta(hours=1))


def test_any_matching_stripe_v1_signature_accepts() -> None:
    body = body_of("stripe/invoice_paid.json")
    t = int(NOW.timestamp())
    old = stripe_v1("whsec_the_secret_before_the_roll", body, t)
    v0 = hashlib.sha256(body).hexdigest()
    header = f"t={t},v1={old},v1={stripe_v1(STRIPE_SECRET, body, t)},v0={v0}"
    assert verify("stripe", STRIPE_SECRET, {"Stripe-Signature": header}, body, NOW)
    only_old = f"t={t},v1={old},v0={v0}"
    assert not verify("stripe", STRIPE_SECRET, {"Stripe-Signature": only_old}, body, NOW)


def test_the_stripe_secret_is_the_key_with_its_whsec_prefix() -> None:
    body = body_of("stripe/invoice_paid.json")
    without_prefix = STRIPE_SECRET.removeprefix("whsec_")
    assert not verify("stripe", STRIPE_SECRET, stripe(body, secret=without_prefix), body, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "v1={v1}",
        "t={t}",
        "t=,v1={v1}",
        "t=1752595200.5,v1={v1}",
        "t={t},t={t},v1={v1}",
        "t={t},v0={v1}",
        "t={t},v1={v1}é",
        "t={t};v1={v1}",
    ],
)
def test_a_malformed_stripe_signature_header_is_false(header: str) -> None:
    body = body_of("stripe/invoice_paid.json")
    t = int(NOW.timestamp())
    value = header.format(t=t, v1=stripe_v1(STRIPE_SECRET, body, t))
    assert not verify("stripe", STRIPE_SECRET, {"Stripe-Signature": value}, body, NOW)


def test_verifying_stripe_needs_an_aware_now() -> None:
    body = body_of("stripe/invoice_paid.json")
    with pytest.raises(ValueError, match="aware"):
        verify("stripe", STRIPE_SECRET, stripe(body), body, NOW.replace(tzinfo=None))


def test_receive_refuses_a_delivery_that_does_not_verify() -> None:
    body = body_of("shopify/orders_paid.json")
    headers = shopify("orders_paid.headers.json", body, secret="not the app's secret")
    with pytest.raises(StoreError) as caught:
        receive(SHOPIFY, headers, body, NOW)
    assert caught.value.code == "invalid_signature"


def test_receive_reads_a_delivery_that_verifies() -> None:
    body = body_of("stripe/invoice_paid.json")
    delivery = receive(STRIPE, stripe(body), body, NOW)
    assert delivery == read_delivery(STRIPE, {}, body)
    assert delivery.sales[0].sale_id == "stripe:in_1RlBCDR7UUImIKwkYvISbcWW"


# Shopify


def test_shopify_orders_paid_is_a_sale_of_the_subtotal_after_discounts() -> None:
    body = body_of("shopify/orders_paid.json")
    delivery = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body)
    assert delivery == Delivery(
        platform="shopify",
        delivery_key="shopify:orders/paid:59d6d79c-595f-4e7e-bc6f-72f5c3d0c66f",
        topic="orders/paid",
        sales=(
            StoreSale(
                sale_id="shopify:820982911946154508",
                amount=Decimal("404.95"),
                currency="USD",
                occurred_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
                subscription_id=None,
                attribution=Attribution(member_id=None, codes=()),
            ),
        ),
    )
    assert str(delivery.sales[0].amount) == "404.95"
    assert delivery.sales[0].category == "product"
    assert delivery.sales[0].attribution.missing


def test_shopify_orders_paid_is_dated_created_at_without_processed_at() -> None:
    order = document("shopify/orders_paid.json") | {
        "processed_at": None,
        "created_at": "2021-12-30T08:15:00+09:00",
    }
    body = encoded(order)
    sale = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body).sales[0]
    assert sale.occurred_at == datetime(2021, 12, 29, 23, 15, tzinfo=UTC)


def test_shopify_without_an_event_id_is_keyed_by_its_webhook_id() -> None:
    body = body_of("shopify/orders_paid.json")
    headers = shopify("orders_paid.headers.json", body)
    del headers["X-Shopify-Event-Id"]
    assert read_delivery(SHOPIFY, headers, body).delivery_key == (
        "shopify:orders/paid:545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9"
    )


def test_a_shopify_order_credits_the_member_id_of_its_note_attributes() -> None:
    order = document("shopify/orders_paid.json") | {
        "note_attributes": [
            {"name": "gift_message", "value": "Happy birthday"},
            {"name": "member_id", "value": " M42 "},
        ],
        "discount_codes": [{"code": "SPRING20", "amount": "20.00", "type": "fixed_amount"}],
    }
    body = encoded(order)
    sale = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body).sales[0]
    assert sale.attribution == Attribution(member_id="M42", codes=("SPRING20",))


def test_a_shopify_order_without_a_member_id_names_its_discount_codes() -> None:
    order = document("shopify/orders_paid.json") | {
        "discount_codes": [{"code": "ALICE-20", "amount": "20.00", "type": "fixed_amount"}],
        "discount_applications": [
            {
                "target_type": "line_item",
                "type": "discount_code",
                "value": "20.0",
                "value_type": "fixed_amount",
                "allocation_method": "across",
                "target_selection": "all",
                "code": "alice-20",
            },
            {
                "target_type": "line_item",
                "type": "manual",
                "value": "5.0",
                "value_type": "fixed_amount",
                "allocation_method": "one",
                "target_selection": "explicit",
                "title": "Loyalty",
                "description": "Loyalty",
            },
            {
                "target_type": "shipping_line",
                "type": "discount_code",
                "value": "100.0",
                "value_type": "percentage",
                "allocation_method": "each",
                "target_selection": "all",
                "code": "FREESHIP",
            },
        ],
    }
    body = encoded(order)
    sale = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body).sales[0]
    assert sale.attribution == Attribution(member_id=None, codes=("ALICE-20", "FREESHIP"))


def test_the_attribution_field_can_be_named() -> None:
    order = document("shopify/orders_paid.json") | {
        "note_attributes": [
            {"name": "member_id", "value": "M1"},
            {"name": "affiliate", "value": "A-77"},
        ],
    }
    body = encoded(order)
    integration = Integration("shopify", SHOPIFY_SECRET, attribution_field="affiliate")
    sale = read_delivery(integration, shopify("orders_paid.headers.json", body), body).sales[0]
    assert sale.attribution == Attribution(member_id="A-77", codes=())


def test_shopify_refunds_create_sums_the_refunded_line_subtotals_exactly() -> None:
    body = body_of("shopify/refunds_create.json")
    delivery = read_delivery(SHOPIFY, shopify("refunds_create.headers.json", body), body)
    assert delivery == Delivery(
        platform="shopify",
        delivery_key="shopify:refunds/create:7a3c1f2e-6d0b-4f5e-9b8a-2c4d6e8f0a1b",
        topic="refunds/create",
        refunds=(
            StoreRefund(
                refund_id="shopify:refund:890088186047892319",
                sale_id="shopify:820982911946154508",
                payment_intent=None,
                amount=Decimal("414.95"),
                currency="USD",
                occurred_at=datetime(2022, 1, 1, 0, 0, tzinfo=UTC),
            ),
        ),
    )
    assert str(delivery.refunds[0].amount) == "414.95"
    # The same JSON numbers added as floats are not 414.95.
    floats = json.loads(body)["refund_line_items"]
    assert sum(line["subtotal"] for line in floats) != 414.95


def test_a_shopify_refund_of_a_json_number_10_0_is_10_00() -> None:
    body = body_of("shopify/refunds_create_partial.json")
    assert b'"subtotal": 10.0,' in body
    refund = read_delivery(SHOPIFY, shopify("refunds_create.headers.json", body), body).refunds[0]
    assert refund == StoreRefund(
        refund_id="shopify:refund:890088186047892320",
        sale_id="shopify:820982911946154508",
        payment_intent=None,
        amount=Decimal("10.00"),
        currency="USD",
        occurred_at=datetime(2022, 1, 4, 15, 15, 7, tzinfo=UTC),
    )
    assert str(refund.amount) == "10.00"


def test_a_shopify_refund_subtotal_may_be_text() -> None:
    refund = document("shopify/refunds_create_partial.json")
    refund["refund_line_items"][0]["subtotal"] = "10.5"
    body = encoded(refund)
    amount = read_delivery(SHOPIFY, shopify("refunds_create.headers.json", body), body)
    assert str(amount.refunds[0].amount) == "10.50"


def test_a_shopify_refund_is_never_rounded() -> None:
    exact = body_of("shopify/refunds_create_partial.json")
    for subtotal in (b"10.001", b"10." + b"0" * 70 + b"1"):
        body = exact.replace(b'"subtotal": 10.0,', b'"subtotal": ' + subtotal + b",")
        with pytest.raises(StoreError) as caught:
            read_delivery(SHOPIFY, shopify("refunds_create.headers.json", body), body)
        assert caught.value.code == "invalid_amount"


def test_a_shopify_refund_without_line_items_applies_nothing() -> None:
    refund = document("shopify/refunds_create.json") | {"refund_line_items": []}
    body = encoded(refund)
    delivery = read_delivery(SHOPIFY, shopify("refunds_create.headers.json", body), body)
    assert (delivery.refunds, delivery.ignored_reason) == ((), "zero_amount")


def test_a_zero_shopify_order_applies_nothing() -> None:
    body = encoded(document("shopify/orders_paid.json") | {"subtotal_price": "0.00"})
    delivery = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body)
    assert (delivery.sales, delivery.ignored_reason) == ((), "zero_amount")


def test_other_shopify_topics_are_answered_and_ignored() -> None:
    body = body_of("shopify/orders_paid.json")
    headers = shopify("orders_paid.headers.json", body) | {"X-Shopify-Topic": "orders/updated"}
    assert read_delivery(SHOPIFY, headers, body) == Delivery(
        platform="shopify",
        delivery_key="shopify:orders/updated:59d6d79c-595f-4e7e-bc6f-72f5c3d0c66f",
        topic="orders/updated",
        ignored_reason="topic_not_handled",
    )


@pytest.mark.parametrize("missing", ["X-Shopify-Topic", "ids"])
def test_a_shopify_delivery_without_its_headers_is_malformed(missing: str) -> None:
    body = body_of("shopify/orders_paid.json")
    headers = shopify("orders_paid.headers.json", body)
    for name in ["X-Shopify-Event-Id", "X-Shopify-Webhook-Id"] if missing == "ids" else [missing]:
        del headers[name]
    with pytest.raises(StoreError) as caught:
        read_delivery(SHOPIFY, headers, body)
    assert caught.value.code == "malformed_delivery"


# WooCommerce


def test_the_woocommerce_ping_is_recognised_and_unsigned() -> None:
    body = body_of("woocommerce/ping.body")
    headers = headers_of("woocommerce/ping.headers.json")
    assert body == b"webhook_id=142"
    assert is_ping("woocommerce", headers, body)
    assert not verify("woocommerce", WOO_SECRET, headers, body, NOW)
    ping = Delivery("woocommerce", None, "ping", ping=True)
    assert receive(WOO, headers, body, NOW) == ping
    assert read_delivery(WOO, headers, body) == ping


@pytest.mark.parametrize(
    ("platform", "content_type", "body"),
    [
        ("shopify", "application/x-www-form-urlencoded", b"webhook_id=142"),
        ("woocommerce", "application/json", b"webhook_id=142"),
        ("woocommerce", "application/x-www-form-urlencoded", b"webhook_id=142&x=1"),
        ("woocommerce", "application/x-www-form-urlencoded", b"webhook_id="),
        ("woocommerce", "application/json", b'{"webhook_id": 142}'),
    ],
)
def test_only_the_woocommerce_ping_is_a_ping(platform: str, content_type: str, body: bytes) -> None:
    assert not is_ping(platform, {"Content-Type": content_type}, body)  # type: ignore[arg-type]


def test_a_processing_woocommerce_order_is_a_sale_net_of_tax_and_shipping() -> None:
    body = body_of("woocommerce/order_727.json")
    assert read_delivery(WOO, woo(body), body) == Delivery(
        platform="woocommerce",
        delivery_key="woocommerce:727:processing:",
        topic="order.updated",
        sales=(
            StoreSale(
                sale_id="woocommerce:727",
                amount=Decimal("18.00"),  # 29.35 - 1.35 tax - 10.00 shipping
                currency="USD",
                occurred_at=datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC),  # date_paid_gmt
                subscription_id=None,
                attribution=Attribution(member_id=None, codes=()),
            ),
        ),
    )


def test_a_woocommerce_order_going_processing_with_refunds() -> None:
    body = encoded(document("woocommerce/order_723.json") | {"status": "processing"})
    paid = datetime(2017, 3, 21, 19, 16, tzinfo=UTC)  # date_created_gmt: date_paid_gmt is null
    assert read_delivery(WOO, woo(body), body) == Delivery(
        platform="woocommerce",
        delivery_key="woocommerce:723:processing:724,726",
        topic="order.updated",
        sales=(
            StoreSale(
                sale_id="woocommerce:723",
                amount=Decimal("29.00"),
                currency="USD",
                occurred_at=paid,
                subscription_id=None,
                attribution=Attribution(member_id=None, codes=()),
            ),
        ),
        refunds=(
            StoreRefund(
                "woocommerce:refund:726", "woocommerce:723", None, Decimal("10.00"), "USD", paid
            ),
            StoreRefund(
                "woocommerce:refund:724", "woocommerce:723", None, Decimal("9.00"), "USD", paid
            ),
        ),
    )


def test_a_pending_woocommerce_order_is_no_sale() -> None:
    body = encoded(document("woocommerce/order_727.json") | {"status": "pending"})
    assert read_delivery(WOO, woo(body), body) == Delivery(
        platform="woocommerce",
        delivery_key="woocommerce:727:pending:",
        topic="order.updated",
        ignored_reason="not_paid",
    )


def test_a_refunded_woocommerce_order_still_gives_its_refunds() -> None:
    body = encoded(document("woocommerce/order_723.json") | {"status": "refunded"})
    delivery = read_delivery(WOO, woo(body), body)
    assert delivery.sales == ()
    assert [(r.refund_id, r.amount) for r in delivery.refunds] == [
        ("woocommerce:refund:726", Decimal("10.00")),
        ("woocommerce:refund:724", Decimal("9.00")),
    ]
    assert delivery.delivery_key == "woocommerce:723:refunded:724,726"


def test_the_woocommerce_key_is_read_from_the_content_not_the_delivery_id() -> None:
    body = body_of("woocommerce/order_723.json")
    first = read_delivery(WOO, woo(body), body)
    retried = woo(body) | {"X-WC-Webhook-Delivery-ID": "9b1d5a3e7f2c4b6d8e0a1c3e5f7b9d1f"}
    assert read_delivery(WOO, retried, body).delivery_key == first.delivery_key
    order = document("woocommerce/order_723.json")
    order["refunds"].insert(0, {"id": 1000, "reason": "damaged", "total": "-5.00"})
    later = encoded(order)
    assert read_delivery(WOO, woo(later), later).delivery_key == (
        "woocommerce:723:completed:724,726,1000"
    )


def test_a_woocommerce_order_credits_its_meta_data_member_id_and_names_its_coupons() -> None:
    order = document("woocommerce/order_727.json")
    order["meta_data"].append({"id": 13110, "key": "member_id", "value": "M9"})
    order["coupon_lines"] = [
        {"id": 319, "code": "bob-friends", "discount": "2.00", "discount_tax": "0", "meta_data": []}
    ]
    body = encoded(order)
    assert read_delivery(WOO, woo(body), body).sales[0].attribution == Attribution(
        member_id="M9", codes=("bob-friends",)
    )
    order["meta_data"].pop()
    body = encoded(order)
    assert read_delivery(WOO, woo(body), body).sales[0].attribution == Attribution(
        member_id=None, codes=("bob-friends",)
    )
    integration = Integration(
        "woocommerce", WOO_SECRET, attribution_field="_download_permissions_granted"
    )
    assert read_delivery(integration, woo(body), body).sales[0].attribution.member_id == "yes"


def test_other_woocommerce_topics_are_answered_and_ignored() -> None:
    body = b'{"id": 142, "code": "summer"}'
    headers = woo(body) | {
        "X-WC-Webhook-Topic": "coupon.created",
        "X-WC-Webhook-Resource": "coupon",
        "X-WC-Webhook-Event": "created",
    }
    assert read_delivery(WOO, headers, body) == Delivery(
        platform="woocommerce",
        delivery_key="woocommerce:coupon.created:4df0a951a314adc554e0f2016102e020",
        topic="coupon.created",
        ignored_reason="topic_not_handled",
    )


# Stripe


def test_stripe_invoice_paid_current_api_is_a_subscription_sale() -> None:
    body = body_of("stripe/invoice_paid.json")
    assert read_delivery(STRIPE, stripe(body), body) == Delivery(
        platform="stripe",
        delivery_key="stripe:evt_1RlBCER7UUImIKwkOTCkGlST",
        topic="invoice.paid",
        sales=(
            StoreSale(
                sale_id="stripe:in_1RlBCDR7UUImIKwkYvISbcWW",
                amount=Decimal("20.00"),
                currency="USD",
                occurred_at=datetime(2025, 7, 15, 15, 55, 7, tzinfo=UTC),  # paid_at
                subscription_id="sub_1MowQVLkdIwHu7ixeRlqHVzs",  # parent.subscription_details
                attribution=Attribution(member_id="M7", codes=()),
            ),
        ),
    )


def test_stripe_invoice_paid_older_api_reads_the_top_level_subscription() -> None:
    body = body_of("stripe/invoice_paid_2023.json")
    assert read_delivery(STRIPE, stripe(body), body) == Delivery(
        platform="stripe",
        delivery_key="stripe:evt_1PBXo9RxqlZt79sDnw7dd5cs",
        topic="invoice.paid",
        sales=(
            StoreSale(
                sale_id="stripe:in_1PBXo5RxqlZt79sDAbGhMpyk",
                amount=Decimal("630.00"),
                currency="USD",
                occurred_at=datetime(2024, 5, 1, 7, 42, 26, tzinfo=UTC),
                subscription_id="sub_1PBXo5RxqlZt79sD3kdxoDVi",
                attribution=Attribution(member_id="M12", codes=("ALICE10",)),  # invoice.metadata
                payment_intents=("pi_3PBXo5RxqlZt79sD1gfyEF1L",),  # older API: payment_intent
            ),
        ),
        # By which a refund naming only the PaymentIntent finds this sale.
        references=(("pi_3PBXo5RxqlZt79sD1gfyEF1L", "stripe:in_1PBXo5RxqlZt79sDAbGhMpyk"),),
    )


def test_stripe_attribution_falls_back_to_the_subscription_details_metadata() -> None:
    event = document("stripe/invoice_paid_2023.json")
    event["data"]["object"]["metadata"] = {}
    body = encoded(event)
    sale = read_delivery(STRIPE, stripe(body), body).sales[0]
    assert sale.attribution == Attribution(member_id="M3", codes=("ALICE10",))


def test_stripe_invoice_metadata_comes_before_the_subscription_details() -> None:
    event = document("stripe/invoice_paid.json")
    event["data"]["object"]["metadata"] = {"member_id": "M8"}
    body = encoded(event)
    assert read_delivery(STRIPE, stripe(body), body).sales[0].attribution.member_id == "M8"


def test_stripe_expanded_discounts_name_their_coupon_and_promotion_code() -> None:
    event = document("stripe/invoice_paid.json")
    event["data"]["object"]["parent"]["subscription_details"]["metadata"] = {}
    event["data"]["object"]["discounts"] = [
        "di_1RlBCDR7UUImIKwkx0Pq9sLm",
        {
            "id": "di_1RlBCDR7UUImIKwkx0Pq9sLn",
            "object": "discount",
            "source": {"coupon": "SUMMER", "type": "coupon"},
            "promotion_code": {
                "id": "promo_1RlBCDR7UUImIKwk",
                "object": "promotion_code",
                "code": "CAROL5",
            },
        },
    ]
    body = encoded(event)
    sale = read_delivery(STRIPE, stripe(body), body).sales[0]
    assert sale.attribution == Attribution(member_id=None, codes=("SUMMER", "CAROL5"))


@pytest.mark.parametrize(
    ("currency", "amount_paid", "expected", "code"),
    [
        ("usd", 1000, "10.00", "USD"),
        ("jpy", 1000, "1000", "JPY"),
        ("kwd", 5120, "5.120", "KWD"),
        ("huf", 150000, "1500", "HUF"),  # Stripe writes HUF with two decimals
        ("isk", 500, "5", "ISK"),
    ],
)
def test_stripe_minor_units_follow_the_currency(
    currency: str, amount_paid: int, expected: str, code: str
) -> None:
    event = document("stripe/invoice_paid.json")
    event["data"]["object"] |= {"currency": currency, "amount_paid": amount_paid}
    body = encoded(event)
    sale = read_delivery(STRIPE, stripe(body), body).sales[0]
    assert (str(sale.amount), sale.currency) == (expected, code)
    assert sale.amount == Decimal(expected)


def test_stripe_exponents() -> None:
    assert [minor_exponent(code) for code in ("USD", "JPY", "KWD", "HUF", "EUR")] == [2, 0, 3, 2, 2]


def test_a_stripe_amount_finer_than_the_currency_is_refused() -> None:
    event = document("stripe/invoice_paid.json")
    event["data"]["object"] |= {"currency": "huf", "amount_paid": 150050}
    body = encoded(event)
    with pytest.raises(StoreError) as caught:
        read_delivery(STRIPE, stripe(body), body)
    assert caught.value.code == "invalid_amount"


def test_a_free_stripe_invoice_applies_nothing() -> None:
    event = document("stripe/invoice_paid.json")
    event["data"]["object"]["amount_paid"] = 0
    body = encoded(event)
    delivery = read_delivery(STRIPE, stripe(body), body)
    assert (delivery.sales, delivery.ignored_reason) == ((), "zero_amount")


def test_a_stripe_invoice_without_paid_at_is_dated_by_the_event() -> None:
    event = document("stripe/invoice_paid.json")
    event["data"]["object"]["status_transitions"]["paid_at"] = None
    body = encoded(event)
    sale = read_delivery(STRIPE, stripe(body), body).sales[0]
    assert sale.occurred_at == datetime(2025, 7, 15, 15, 55, 9, tzinfo=UTC)


def test_stripe_charge_refunded_refunds_only_the_newly_refunded_difference() -> None:
    body = body_of("stripe/charge_refunded_2023.json")
    assert read_delivery(STRIPE, stripe(body), body) == Delivery(
        platform="stripe",
        delivery_key="stripe:evt_3PBXo5RxqlZt79sD1kT0bWvX",
        topic="charge.refunded",
        refunds=(
            StoreRefund(
                refund_id="stripe:refund:ch_3PBXo5RxqlZt79sD1dVQwsQ1:30000",
                sale_id="stripe:in_1PBXo5RxqlZt79sDAbGhMpyk",
                payment_intent=None,
                amount=Decimal("200.00"),  # 300.00 refunded in all, 100.00 of it before
                currency="USD",
                occurred_at=datetime(2024, 5, 8, 7, 42, 27, tzinfo=UTC),
            ),
        ),
    )


def test_stripe_charge_refunded_without_previous_attributes_refunds_all_of_it() -> None:
    event = document("stripe/charge_refunded_2023.json")
    del event["data"]["previous_attributes"]
    body = encoded(event)
    refund = read_delivery(STRIPE, stripe(body), body).refunds[0]
    assert (refund.refund_id, refund.amount) == (
        "stripe:refund:ch_3PBXo5RxqlZt79sD1dVQwsQ1:30000",
        Decimal("300.00"),
    )


def test_stripe_charge_refunded_current_api_refers_to_its_payment_intent() -> None:
    body = body_of("stripe/charge_refunded.json")
    assert read_delivery(STRIPE, stripe(body), body).refunds == (
        StoreRefund(
            refund_id="stripe:refund:ch_3RlBCDR7UUImIKwk1v2Qm7Tn:2000",
            sale_id=None,
            payment_intent="pi_3RlBCDR7UUImIKwk1O9pW3xz",
            amount=Decimal("20.00"),
            currency="USD",
            occurred_at=datetime(2025, 7, 15, 22, 54, 56, tzinfo=UTC),
        ),
    )


def test_a_stripe_charge_event_that_refunds_nothing_new_applies_nothing() -> None:
    event = document("stripe/charge_refunded.json")
    event["data"]["previous_attributes"]["amount_refunded"] = 2000
    body = encoded(event)
    assert read_delivery(STRIPE, stripe(body), body).ignored_reason == "zero_amount"
    event = document("stripe/charge_refunded.json")
    event["data"]["object"]["payment_intent"] = None
    body = encoded(event)
    assert read_delivery(STRIPE, stripe(body), body).ignored_reason == "no_invoice"


def test_other_stripe_events_are_answered_and_ignored() -> None:
    event = document("stripe/invoice_paid.json") | {"type": "invoice.payment_succeeded"}
    body = encoded(event)
    assert read_delivery(STRIPE, stripe(body), body) == Delivery(
        platform="stripe",
        delivery_key="stripe:evt_1RlBCER7UUImIKwkOTCkGlST",
        topic="invoice.payment_succeeded",
        ignored_reason="topic_not_handled",
    )


# Refusals


def shopify_order(**changes: Any) -> bytes:
    return encoded(document("shopify/orders_paid.json") | changes)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "malformed_delivery"),
        (b"<html>Bad gateway</html>", "malformed_delivery"),
        (b'{"id": 1, "currency": "USD"', "malformed_delivery"),
        (b"\xff\xfe{}", "malformed_delivery"),
        (b"[]", "malformed_delivery"),
        (b'{"subtotal_price": NaN}', "malformed_delivery"),
        (b"[" * 100_000, "malformed_delivery"),
        (shopify_order(id=None), "malformed_delivery"),
        (shopify_order(id=True), "malformed_delivery"),
        (shopify_order(subtotal_price=None), "malformed_delivery"),
        (shopify_order(subtotal_price=True), "malformed_delivery"),
        (shopify_order(subtotal_price="404,95"), "malformed_delivery"),
        (shopify_order(subtotal_price="1e3"), "malformed_delivery"),
        (shopify_order(processed_at="2021-12-31T19:00:00"), "malformed_delivery"),
        (shopify_order(processed_at="yesterday"), "malformed_delivery"),
        (shopify_order(note_attributes={"member_id": "M1"}), "malformed_delivery"),
        (shopify_order(discount_codes=["SPRING"]), "malformed_delivery"),
        (shopify_order(currency=None), "malformed_delivery"),
        (shopify_order(currency="XYZ"), "unsupported_currency"),
        (shopify_order(subtotal_price="10.005"), "invalid_amount"),
        (shopify_order(subtotal_price="-1.00"), "invalid_amount"),
        (shopify_order(subtotal_price="1000000000000000.00"), "invalid_amount"),
        (shopify_order(subtotal_price="10.000000000000000000001"), "invalid_amount"),
    ],
)
def test_a_body_not_of_the_documented_shape_is_a_typed_error(body: bytes, code: str) -> None:
    with pytest.raises(StoreError) as caught:
        read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body)
    assert caught.value.code == code
    assert caught.value.detail == str(caught.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("data",), None),
        (("data", "object"), "in_1RlBCDR7UUImIKwkYvISbcWW"),
        (("data", "object", "amount_paid"), 20.0),
        (("data", "object", "amount_paid"), "2000"),
        (("data", "object", "parent"), []),
        (("data", "object", "status_transitions", "paid_at"), "2025-07-15T15:55:07Z"),
        (("data", "object", "metadata"), [{"member_id": "M7"}]),
        (("created",), -1),
        (("id",), None),
    ],
)
def test_a_stripe_event_not_of_the_documented_shape_is_malformed(
    path: tuple[str, ...], value: Any
) -> None:
    event = document("stripe/invoice_paid.json")
    target = event
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    body = encoded(event)
    with pytest.raises(StoreError) as caught:
        read_delivery(STRIPE, stripe(body), body)
    assert caught.value.code == "malformed_delivery"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"total": "$29.35"}, "malformed_delivery"),
        ({"total": None}, "malformed_delivery"),
        ({"date_paid_gmt": "22/03/2017"}, "malformed_delivery"),
        ({"refunds": [{"id": 726, "total": "-10.001"}]}, "invalid_amount"),
        ({"shipping_total": "40.00"}, "invalid_amount"),
        ({"status": ""}, "malformed_delivery"),
        ({"currency": "usd dollars"}, "malformed_delivery"),
    ],
)
def test_a_woocommerce_order_not_of_the_documented_shape_is_refused(
    change: dict[str, Any], code: str
) -> None:
    body = encoded(document("woocommerce/order_727.json") | change)
    with pytest.raises(StoreError) as caught:
        read_delivery(WOO, woo(body), body)
    assert caught.value.code == code


# What the caller checks


def test_a_sale_in_another_currency_than_the_programs_is_refused() -> None:
    body = body_of("shopify/orders_paid.json")
    delivery = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body)
    check_currency(delivery, "USD")
    with pytest.raises(StoreError) as caught:
        check_currency(delivery, "EUR")
    assert caught.value.code == "currency_mismatch"
    refund = read_delivery(STRIPE, {}, body_of("stripe/charge_refunded.json"))
    with pytest.raises(StoreError):
        check_currency(refund, "JPY")
    unknown = replace(refund, refunds=(replace(refund.refunds[0], currency=None),))
    check_currency(unknown, "JPY")


def test_a_sale_that_names_no_member_and_no_code_has_no_attribution() -> None:
    body = body_of("shopify/orders_paid.json")
    sale = read_delivery(SHOPIFY, shopify("orders_paid.headers.json", body), body).sales[0]
    with pytest.raises(StoreError) as caught:
        check_attribution(sale)
    assert caught.value.code == "no_attribution"
    check_attribution(replace(sale, attribution=Attribution(codes=("ALICE10",))))
    check_attribution(replace(sale, attribution=Attribution(member_id="M1")))


def test_an_integration_checks_its_platform_and_hides_its_secret() -> None:
    assert repr(SHOPIFY) == "Integration(platform='shopify', attribution_field='member_id')"
    assert SHOPIFY.attribution_field == "member_id"
    with pytest.raises(ValueError, match="platform"):
        Integration("magento", "s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="attribution field"):
        Integration("stripe", "s", attribution_field=" ")


def test_stripe_invoice_payment_paid_tells_which_invoice_a_payment_intent_paid() -> None:
    """The current API's refunds name only their PaymentIntent; invoice_payment.paid (an
    InvoicePayment object) says which invoice that PaymentIntent paid."""
    body = body_of("stripe/invoice_payment_paid.json")
    assert read_delivery(STRIPE, stripe(body), body) == Delivery(
        platform="stripe",
        delivery_key="stripe:evt_1RlBCFR7UUImIKwkpaymnt01",
        topic="invoice_payment.paid",
        references=(("pi_3RlBCDR7UUImIKwk1O9pW3xz", "stripe:in_1RlBCDR7UUImIKwkYvISbcWW"),),
    )
