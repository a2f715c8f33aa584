"""Load on the running service through its HTTP API: single sales from concurrent clients,
batches of sale events, and timed reads."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.client import Connection, HttpError, connection
from bench.generate import CURRENCY, PRICE_WEIGHTS, PRICES, Subject
from bench.procs import CpuSnapshot, CpuUse
from bench.stats import Load, Reads

TIMEOUT = httpx.Timeout(600.0)
LOAD_MONTH = datetime(2026, 12, 1, tzinfo=UTC)
READ_PERIOD = "2026-06"
PAGE = 100
DEEP_OFFSET_MAX = 50_000  # a deep page starts after half the team, at most this far in


def new_sale(sale_id: str, seller: str, rng: random.Random) -> dict[str, Any]:
    """A product sale of December 2026 (after everything the import loaded)."""
    at = LOAD_MONTH + timedelta(seconds=rng.randrange(31 * 86_400))
    return {
        "id": sale_id,
        "member_id": seller,
        "amount": rng.choices(PRICES, PRICE_WEIGHTS)[0],
        "currency": CURRENCY,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@dataclass
class _Tally:
    latencies: list[float]
    errors: int = 0
    first_error: str | None = None

    def fail(self, detail: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = detail[:300]


@asynccontextmanager
async def connected(
    kind: str, base_url: str, key: str, count: int
) -> AsyncIterator[list[Connection]]:
    """`count` connections, each opened (by a first request) before any clock starts."""
    pool = [connection(kind, base_url, key) for _ in range(count)]
    try:
        await asyncio.gather(*(c.request("GET", "/healthz") for c in pool))
        yield pool
    finally:
        await asyncio.gather(*(c.close() for c in pool))


async def single_sales(
    kind: str,
    base_url: str,
    key: str,
    sellers: list[str],
    *,
    count: int,
    clients: int,
    tag: str,
    cpu: Callable[[], CpuSnapshot],
) -> Load:
    """`count` POST /v1/sales from `clients` concurrent clients, each on its own connection,
    each sending its next sale as soon as the previous one is answered."""
    numbers = itertools.count()
    tally = _Tally(latencies=[])

    async def worker(index: int, client: Connection) -> None:
        rng = random.Random(f"{tag}-{index}")
        while (number := next(numbers)) < count:
            body = new_sale(f"{tag}-{number}", rng.choice(sellers), rng)
            started = time.perf_counter()
            try:
                status, answer = await client.request("POST", "/v1/sales", body)
            except HttpError as error:
                tally.fail(str(error))
                continue
            tally.latencies.append(time.perf_counter() - started)
            if status != 201:
                tally.fail(f"{status} {answer.decode(errors='replace')}")

    async with connected(kind, base_url, key, clients) as pool:
        before = cpu()
        started = time.perf_counter()
        await asyncio.gather(*(worker(i, client) for i, client in enumerate(pool)))
        seconds = time.perf_counter() - started
        use = CpuUse.between(before, cpu())
    return Load(
        count - tally.errors, seconds, tally.latencies, tally.errors, tally.first_error, use
    )


async def event_batches(
    kind: str,
    base_url: str,
    key: str,
    sellers: list[str],
    *,
    batches: int,
    batch_size: int,
    clients: int,
    tag: str,
    cpu: Callable[[], CpuSnapshot],
) -> Load:
    """`batches` POST /v1/events of `batch_size` sale.completed events each, from `clients`
    concurrent senders. Each sender sells for its own share of the sellers, so that two
    batches never update the same member's volume in opposite orders (a deadlock that
    would measure the sender, not the service)."""
    numbers = itertools.count()
    tally = _Tally(latencies=[])
    applied = 0

    async def sender(index: int, client: Connection) -> None:
        nonlocal applied
        own = sellers[index::clients] or sellers
        rng = random.Random(f"{tag}-{index}")
        while (batch := next(numbers)) < batches:
            events = []
            for position in range(batch_size):
                sale = new_sale(f"{tag}-{batch}-{position}", rng.choice(own), rng)
                events.append(
                    {
                        "id": f"evt-{tag}-{batch}-{position}",
                        "type": "sale.completed",
                        "occurred_at": sale["occurred_at"],
                        "data": sale,
                    }
                )
            started = time.perf_counter()
            try:
                status, answer = await client.request("POST", "/v1/events", {"events": events})
            except HttpError as error:
                tally.fail(str(error))
                continue
            tally.latencies.append(time.perf_counter() - started)
            if status != 200:
                tally.fail(f"{status} {answer.decode(errors='replace')}")
                continue
            for result in json.loads(answer)["results"]:
                if result.get("status") == 201:
                    applied += 1
                else:
                    tally.fail(f"event {result}")

    async with connected(kind, base_url, key, clients) as pool:
        before = cpu()
        started = time.perf_counter()
        await asyncio.gather(*(sender(i, client) for i, client in enumerate(pool)))
        seconds = time.perf_counter() - started
        use = CpuUse.between(before, cpu())
    return Load(applied, seconds, tally.latencies, tally.errors, tally.first_error, use)


ENDPOINTS = (
    "overrides",
    "downline/stats",
    "upline",
    "downline page 1",
    "downline deep page",
    "rank",
)


def read_path(endpoint: str, member: str, deep_cursor: str | None) -> str | None:
    """The request of an endpoint for a member; None when it does not apply."""
    match endpoint:
        case "overrides":
            return f"/v1/members/{member}/overrides?period={READ_PERIOD}"
        case "downline/stats":
            return f"/v1/members/{member}/downline/stats?period={READ_PERIOD}"
        case "upline":
            return f"/v1/members/{member}/upline"
        case "rank":  # progress in an open month: the reads come before any close
            return f"/v1/members/{member}/rank?period={READ_PERIOD}"
        case "downline page 1":
            return f"/v1/members/{member}/downline?limit={PAGE}"
        case "downline deep page":
            if deep_cursor is None:
                return None
            return f"/v1/members/{member}/downline?limit={PAGE}&cursor={deep_cursor}"
    raise ValueError(endpoint)


async def deep_cursor(client: httpx.AsyncClient, subject: Subject) -> tuple[str | None, int]:
    """A cursor that starts a page about half-way into the member's team (in the list's own
    order), at most `DEEP_OFFSET_MAX` members in, found by walking the pages once (untimed);
    and the offset it starts at. None for a team of at most two pages."""
    if subject.below <= 2 * PAGE:
        return None, 0
    target = min(subject.below // 2, DEEP_OFFSET_MAX)
    cursor: str | None = None
    seen = 0
    while seen < target:
        limit = min(1000, target - seen)
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get(f"/v1/members/{subject.member_id}/downline", params=params)
        response.raise_for_status()
        page = response.json()
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return None, 0
    return cursor, seen


async def timed_reads(
    client: Connection,
    path: str,
    *,
    calls: int,
    warmup: int,
    cpu: Callable[[], CpuSnapshot],
) -> Reads:
    """`warmup` untimed calls, then `calls` timed ones, one after the other."""
    tally = _Tally(latencies=[])
    for _ in range(warmup):
        await client.request("GET", path)
    before = cpu()
    for _ in range(calls):
        started = time.perf_counter()
        try:
            status, answer = await client.request("GET", path)
        except HttpError as error:
            tally.fail(str(error))
            continue
        tally.latencies.append(time.perf_counter() - started)
        if status != 200:
            tally.fail(f"{status} {answer.decode(errors='replace')}")
    use = CpuUse.between(before, cpu())
    return Reads(tally.latencies, tally.errors, tally.first_error, use)


def walker(base_url: str, key: str) -> httpx.AsyncClient:
    """An httpx client for the untimed calls (finding deep cursors)."""
    return httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT
    )
