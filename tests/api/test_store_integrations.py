"""Store integrations end to end: the platforms' published sample deliveries, signed as each
platform signs, posted to the integration's endpoint; the sales and refunds they become
read back through the API; deliveries parked until their member arrives, refused with a
code, redelivered, delivered twice at once, and left stored by a crash before applying."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import stores as store_sql
from service.errors import InvalidIntegration
from service.intake import stores
from tests.api.flows import enroll
from tests.conftest import Program
from tests.domain.test_stores import (
    SHOPIFY_SECRET,
    STRIPE_SECRET,
    WOO_SECRET,
    body_of,
    document,
    encoded,
    shopify,
    stripe,
    woo,
)

PLAN = {
    "effective_from": "2016-01-01T00:00:00Z",
    "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}},
}


async def connect(
    sessions: async_sessionmaker[AsyncSession], program: Program, platform: str, secret: str
) -> str:
    async with sessions() as session, session.begin():
        row = await stores.create_integration(session, program.id, platform=platform, secret=secret)
    return row.integration_id


async def setup(client: httpx.AsyncClient, program: Program, *members: str) -> None:
    response = await client.put("/v1/plan", json=PLAN, headers=program.headers)
    assert response.status_code == 201, response.text
    for member in members:
        await enroll(client, program, member, None, enrolled_at="2016-01-01T00:00:00Z")


async def deliver(
    client: httpx.AsyncClient, integration: str, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/integrations/{integration}/webhook", content=body, headers=headers
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def sale(client: httpx.AsyncClient, program: Program, sale_id: str) -> dict[str, Any]:
    """The sale with its lines and refunds."""
    response = await client.get(f"/v1/sales/{sale_id}", headers=program.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {**body["sale"], "lines": body["lines"], "refunds": body["refunds"]}


async def deliveries(
    client: httpx.AsyncClient, program: Program, integration: str, status: str | None = None
) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    response = await client.get(
        f"/v1/integrations/{integration}/deliveries", params=params, headers=program.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def shopify_order(member_id: str) -> bytes:
    order = document("shopify/orders_paid.json")
    order["note_attributes"] = [{"name": "member_id", "value": member_id}]
    return encoded(order)


async def test_a_shopify_order_and_its_refund_become_a_sale_and_a_refund(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "anna")
    integration = await connect(sessions, program, "shopify", SHOPIFY_SECRET)
    body = shopify_order("anna")
    first = await deliver(client, integration, body, shopify("orders_paid.headers.json", body))
    assert (first["status"], first["sale_id"], first["duplicate"]) == (
        "applied",
        "shopify:820982911946154508",
        False,
    )
    recorded = await sale(client, program, "shopify:820982911946154508")
    # subtotal_price 404.95 (after discounts, before tax and shipping), processed at
    # 2021-12-31T19:00:00-05:00 = 2022-01-01T00:00:00Z; personal 10 %: 40.50 (40.495
    # rounded half-even to the cent is 40.50).
    assert (recorded["member_id"], recorded["amount"], recorded["occurred_at"]) == (
        "anna",
        "404.95",
        "2022-01-01T00:00:00Z",
    )
    assert [(line["earner_id"], line["amount"]) for line in recorded["lines"]] == [
        ("anna", "40.50")
    ]

    # The same delivery again: answered as the first, nothing applied twice.
    again = await deliver(client, integration, body, shopify("orders_paid.headers.json", body))
    assert (again["id"], again["status"], again["duplicate"]) == (first["id"], "applied", True)

    # A refund whose line item subtotal is the JSON number 10.0: refunded 10.00 exactly.
    refund = body_of("shopify/refunds_create_partial.json")
    refunded = await deliver(
        client, integration, refund, shopify("refunds_create.headers.json", refund)
    )
    assert (refunded["status"], refunded["sale_id"]) == ("applied", "shopify:820982911946154508")
    recorded = await sale(client, program, "shopify:820982911946154508")
    assert [(r["id"], r["amount"]) for r in recorded["refunds"]] == [
        ("shopify:refund:890088186047892320", "10.00")
    ]
    assert [d["status"] for d in await deliveries(client, program, integration)] == [
        "applied",
        "applied",
    ]


async def test_a_bad_signature_is_401_and_nothing_is_stored(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "anna")
    integration = await connect(sessions, program, "shopify", SHOPIFY_SECRET)
    body = shopify_order("anna")
    headers = shopify("orders_paid.headers.json", body, secret="not-the-secret")
    response = await client.post(
        f"/v1/integrations/{integration}/webhook", content=body, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    unsigned = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    response = await client.post(
        f"/v1/integrations/{integration}/webhook", content=body, headers=unsigned
    )
    assert response.status_code == 401
    assert await deliveries(client, program, integration) == []


async def test_a_stale_stripe_timestamp_is_401(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "M7")
    integration = await connect(sessions, program, "stripe", STRIPE_SECRET)
    body = body_of("stripe/invoice_paid.json")
    stale = stripe(body, timestamp=int(time.time()) - 301)
    response = await client.post(
        f"/v1/integrations/{integration}/webhook", content=body, headers=stale
    )
    assert response.status_code == 401
    fresh = await deliver(client, integration, body, stripe(body, timestamp=int(time.time())))
    assert (fresh["status"], fresh["sale_id"]) == ("applied", "stripe:in_1RlBCDR7UUImIKwkYvISbcWW")


async def test_a_stripe_invoice_waits_for_its_member_then_applies_once_enrolled(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program)
    integration = await connect(sessions, program, "stripe", STRIPE_SECRET)
    body = body_of("stripe/invoice_paid.json")  # current API: member M7 in parent metadata
    parked = await deliver(client, integration, body, stripe(body, timestamp=int(time.time())))
    assert (parked["status"], parked["code"]) == ("parked", "unknown_member")
    response = await client.get(
        "/v1/sales/stripe:in_1RlBCDR7UUImIKwkYvISbcWW", headers=program.headers
    )
    assert response.status_code == 404
    assert [
        (d["id"], d["status"]) for d in await deliveries(client, program, integration, "parked")
    ] == [(parked["id"], "parked")]

    # The member arrives: the enrolment applies the parked invoice, in its transaction.
    await enroll(client, program, "M7", None, enrolled_at="2016-01-01T00:00:00Z")
    recorded = await sale(client, program, "stripe:in_1RlBCDR7UUImIKwkYvISbcWW")
    # amount_paid 2000 in USD's minor units: 20.00; a subscription's invoice: residual.
    assert (recorded["member_id"], recorded["amount"], recorded["subscription_id"]) == (
        "M7",
        "20.00",
        "sub_1MowQVLkdIwHu7ixeRlqHVzs",
    )
    assert await deliveries(client, program, integration, "parked") == []
    (applied,) = await deliveries(client, program, integration, "applied")
    assert (applied["id"], applied["sale_id"]) == (
        parked["id"],
        "stripe:in_1RlBCDR7UUImIKwkYvISbcWW",
    )


async def test_a_stripe_refund_of_the_current_api_finds_its_sale_by_payment_intent(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "M7")
    integration = await connect(sessions, program, "stripe", STRIPE_SECRET)
    invoice = body_of("stripe/invoice_paid.json")
    await deliver(client, integration, invoice, stripe(invoice, timestamp=int(time.time())))
    refund = body_of("stripe/charge_refunded.json")  # names only pi_3RlBCDR7UUImIKwk1O9pW3xz
    parked = await deliver(client, integration, refund, stripe(refund, timestamp=int(time.time())))
    assert (parked["status"], parked["code"]) == ("parked", "unknown_sale")
    # Stripe's invoice_payment.paid tells which PaymentIntent paid the invoice.
    payment = body_of("stripe/invoice_payment_paid.json")
    told = await deliver(client, integration, payment, stripe(payment, timestamp=int(time.time())))
    assert told["status"] == "applied"
    recorded = await sale(client, program, "stripe:in_1RlBCDR7UUImIKwkYvISbcWW")
    # amount_refunded 2000 of which 0 before: the whole 20.00.
    assert [(r["id"], r["amount"]) for r in recorded["refunds"]] == [
        ("stripe:refund:ch_3RlBCDR7UUImIKwk1v2Qm7Tn:2000", "20.00")
    ]
    assert [d["status"] for d in await deliveries(client, program, integration)] == [
        "applied",
        "applied",
        "applied",
    ]


async def test_a_woocommerce_order_by_coupon_code_with_its_refunds_and_the_ping(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program)
    response = await client.post(
        "/v1/members",
        json={"id": "lena", "sponsor_id": None, "enrolled_at": "2016-01-01T00:00:00Z",
              "referral_code": "LENA10"},
        headers=program.headers,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    integration = await connect(sessions, program, "woocommerce", WOO_SECRET)
    ping = body_of("woocommerce/ping.body")
    ping_headers: dict[str, str] = json.loads(body_of("woocommerce/ping.headers.json"))
    pinged = await deliver(client, integration, ping, ping_headers)
    assert (pinged["id"], pinged["topic"]) == (None, "ping")

    order = document("woocommerce/order_723.json")
    order["coupon_lines"] = [{"id": 1, "code": "lena10", "discount": "0.00"}]
    body = encoded(order)
    done = await deliver(client, integration, body, woo(body))
    assert (done["status"], done["sale_id"]) == ("applied", "woocommerce:723")
    recorded = await sale(client, program, "woocommerce:723")
    # total 39.00 - tax 0.00 - shipping 10.00 = 29.00, credited to the code's holder; its
    # refunds -10.00 and -9.00 are refunds of 10.00 and 9.00.
    assert (recorded["member_id"], recorded["amount"]) == ("lena", "29.00")
    assert sorted((r["id"], r["amount"]) for r in recorded["refunds"]) == [
        ("woocommerce:refund:724", "9.00"),
        ("woocommerce:refund:726", "10.00"),
    ]
    assert len(await deliveries(client, program, integration)) == 1


async def test_a_foreign_currency_and_an_unattributed_order_are_kept_as_refused(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "M7")
    integration = await connect(sessions, program, "stripe", STRIPE_SECRET)
    event = document("stripe/invoice_paid.json")
    event["data"]["object"]["currency"] = "eur"
    body = encoded(event)
    refused = await deliver(client, integration, body, stripe(body, timestamp=int(time.time())))
    assert (refused["status"], refused["code"]) == ("refused", "currency_mismatch")

    shop = await connect(sessions, program, "shopify", SHOPIFY_SECRET)
    order = document("shopify/orders_paid.json")  # no note attribute, no discount code
    body = encoded(order)
    unattributed = await deliver(client, shop, body, shopify("orders_paid.headers.json", body))
    assert (unattributed["status"], unattributed["code"]) == ("refused", "no_attribution")
    (listed,) = await deliveries(client, program, shop, "refused")
    assert (listed["id"], listed["topic"], listed["code"]) == (
        unattributed["id"],
        "orders/paid",
        "no_attribution",
    )
    # The admin gives the buyer's member the order's code... and replays the delivery.
    order["discount_codes"] = [{"code": "M7CODE", "amount": "0.00", "type": "fixed_amount"}]
    response = await client.post(
        f"/v1/integrations/{shop}/deliveries/{unattributed['id']}/replay",
        headers=program.headers,
    )
    assert response.status_code == 200
    assert response.json()["code"] == "no_attribution"  # the stored body names no one still


async def test_a_delivery_stored_before_a_crash_is_applied_by_its_redelivery(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "anna")
    integration = await connect(sessions, program, "shopify", SHOPIFY_SECRET)
    body = shopify_order("anna")
    headers = shopify("orders_paid.headers.json", body)
    # As if the process died after storing the delivery, before applying it.
    async with sessions() as session, session.begin():
        stored, new = await store_sql.store_delivery(
            session,
            integration_id=integration,
            delivery_id="dlv_00000000000000aa",
            program_id=program.id,
            delivery_key="shopify:orders/paid:59d6d79c-595f-4e7e-bc6f-72f5c3d0c66f",
            topic="orders/paid",
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
        )
    assert new
    assert stored.status == "received"
    redelivered = await deliver(client, integration, body, headers)
    assert (redelivered["id"], redelivered["status"], redelivered["sale_id"]) == (
        "dlv_00000000000000aa",
        "applied",
        "shopify:820982911946154508",
    )
    assert (await sale(client, program, "shopify:820982911946154508"))["amount"] == "404.95"


async def test_the_same_delivery_twice_at_once_is_one_sale(
    live_client: httpx.AsyncClient,
    live_program: Program,
    live_sessions: async_sessionmaker[AsyncSession],
) -> None:
    client, program = live_client, live_program
    await setup(client, program, "anna")
    integration = await connect(live_sessions, program, "shopify", SHOPIFY_SECRET)
    body = shopify_order("anna")
    headers = shopify("orders_paid.headers.json", body)
    both = await asyncio.gather(
        *(
            client.post(f"/v1/integrations/{integration}/webhook", content=body, headers=headers)
            for _ in range(2)
        )
    )
    answers = sorted((r.status_code, r.json()["status"], r.json()["duplicate"]) for r in both)
    assert answers == [(200, "applied", False), (200, "applied", True)]
    assert len({r.json()["id"] for r in both}) == 1
    response = await client.get("/v1/sales/shopify:820982911946154508", headers=program.headers)
    assert response.json()["sale"]["amount"] == "404.95"
    assert len(await deliveries(client, program, integration)) == 1


async def test_a_revoked_or_unknown_integration_is_404(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "anna")
    integration = await connect(sessions, program, "shopify", SHOPIFY_SECRET)
    async with sessions() as session, session.begin():
        assert await store_sql.revoke_integration(session, program.id, integration)
    body = shopify_order("anna")
    for target in (integration, "int_0000000000000000"):
        response = await client.post(
            f"/v1/integrations/{target}/webhook",
            content=body,
            headers=shopify("orders_paid.headers.json", body),
        )
        assert response.status_code == 404
        assert response.json()["code"] == "integration_not_found"


async def test_a_stripe_invoice_and_refund_of_the_older_api(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program, "M12")
    integration = await connect(sessions, program, "stripe", STRIPE_SECRET)
    invoice = body_of("stripe/invoice_paid_2023.json")  # `subscription` at the top level
    paid = await deliver(client, integration, invoice, stripe(invoice, timestamp=int(time.time())))
    assert (paid["status"], paid["sale_id"]) == ("applied", "stripe:in_1PBXo5RxqlZt79sDAbGhMpyk")
    recorded = await sale(client, program, "stripe:in_1PBXo5RxqlZt79sDAbGhMpyk")
    # amount_paid 63000 cents: 630.00, paid at 1714549346 = 2024-05-01T07:42:26Z, credited
    # to the invoice metadata's member (M12; the subscription's names M3).
    assert (
        recorded["member_id"],
        recorded["amount"],
        recorded["occurred_at"],
        recorded["subscription_id"],
    ) == ("M12", "630.00", "2024-05-01T07:42:26Z", "sub_1PBXo5RxqlZt79sD3kdxoDVi")
    refund = body_of("stripe/charge_refunded_2023.json")  # the charge names its invoice
    refunded = await deliver(
        client, integration, refund, stripe(refund, timestamp=int(time.time()))
    )
    assert refunded["status"] == "applied"
    recorded = await sale(client, program, "stripe:in_1PBXo5RxqlZt79sDAbGhMpyk")
    # amount_refunded 30000, of which 10000 before this event: 200.00 newly refunded.
    assert [(r["id"], r["amount"]) for r in recorded["refunds"]] == [
        ("stripe:refund:ch_3PBXo5RxqlZt79sD1dVQwsQ1:30000", "200.00")
    ]


async def test_a_program_connects_one_store_per_platform(
    program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await connect(sessions, program, "woocommerce", WOO_SECRET)
    async with sessions() as session, session.begin():
        with pytest.raises(InvalidIntegration, match=first):
            await stores.create_integration(
                session, program.id, platform="woocommerce", secret="another"
            )
        await store_sql.revoke_integration(session, program.id, first)
    assert await connect(sessions, program, "woocommerce", "another") != first


async def test_a_signed_body_that_cannot_be_read_is_kept_as_refused(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await setup(client, program)
    integration = await connect(sessions, program, "shopify", SHOPIFY_SECRET)
    bodies = [b"not json", b'{"id": 1, "subtotal_price": 1E+100000000000000000000}']
    refused = [
        await deliver(client, integration, body, shopify("orders_paid.headers.json", body))
        for body in bodies
    ]
    assert [(r["status"], r["code"]) for r in refused] == [
        ("refused", "malformed_delivery"),
        ("refused", "malformed_delivery"),
    ]
    listed = await deliveries(client, program, integration, "refused")
    assert sorted(d["id"] for d in listed) == sorted(r["id"] for r in refused)


async def test_a_delivery_left_received_is_applied_by_the_next_one(
    client: httpx.AsyncClient, program: Program, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A delivery stored, then not applied (its apply met a database gone away: the answer
    was a 503), which WooCommerce will never deliver again: the next delivery to the
    integration applies it once it has waited a minute."""
    await setup(client, program)
    response = await client.post(
        "/v1/members",
        json={"id": "lena", "sponsor_id": None, "enrolled_at": "2016-01-01T00:00:00Z",
              "referral_code": "LENA10"},
        headers=program.headers,
    )  # fmt: skip
    assert response.status_code == 201
    integration = await connect(sessions, program, "woocommerce", WOO_SECRET)
    order = document("woocommerce/order_727.json")
    order["coupon_lines"] = [{"id": 1, "code": "LENA10", "discount": "0.00"}]
    body = encoded(order)
    async with sessions() as session, session.begin():
        _, new = await store_sql.store_delivery(
            session,
            integration_id=integration,
            delivery_id="dlv_00000000000000bb",
            program_id=program.id,
            delivery_key="woocommerce:727:processing:",
            topic="order.updated",
            headers={k.lower(): v for k, v in woo(body).items()},
            body=body,
        )
        await session.execute(
            text(
                "UPDATE store_deliveries SET received_at = now() - interval '2 minutes'"
                " WHERE delivery_id = 'dlv_00000000000000bb'"
            )
        )
    assert new
    assert [d["status"] for d in await deliveries(client, program, integration, "received")] == [
        "received"
    ]
    other = document("woocommerce/order_723.json")
    other["coupon_lines"] = [{"id": 1, "code": "LENA10", "discount": "0.00"}]
    next_body = encoded(other)
    await deliver(client, integration, next_body, woo(next_body))
    assert await deliveries(client, program, integration, "received") == []
    # Order 727: total 29.35 - tax 1.35 - shipping 10.00 = 18.00.
    assert (await sale(client, program, "woocommerce:727"))["amount"] == "18.00"
