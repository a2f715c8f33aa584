"""The bare-SQL baseline: the work of one sale, as `service/services/sales.py` record_sales
does it, without HTTP, the ORM layer or anything else: in one transaction per sale,
SALE_CONTEXT (plan version, taken id, payable upline), the pure `calculate`, then
WRITE_SALES (the sale, its lines and its volume), the very statements of
`service/db/sales.py` with the same parameters (`write_parameters`), sent by asyncpg from a
pool of as many connections as the service has clients."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.elements import TextClause

from bench.database import connect_options
from bench.load import new_sale
from bench.procs import CpuSnapshot, CpuUse
from bench.stats import Load
from service.db.sales import SALE_CONTEXT, WRITE_SALES, NewSale, write_parameters
from service.domain.calculator import Participant, SaleFacts, calculate
from service.services.plans import plan_of
from service.services.sales import new_line, skipped_levels_json


class Statement:
    """A SQLAlchemy text() statement with :named parameters, as asyncpg's $n SQL."""

    def __init__(self, statement: TextClause) -> None:
        compiled = statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        missing = [name for name in self.names if name not in values]
        if missing:
            raise KeyError(f"the statement now also takes {missing}: update bench/baseline.py")
        return [values[name] for name in self.names]


CONTEXT = Statement(SALE_CONTEXT)
WRITE = Statement(WRITE_SALES)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


class BareSql:
    def __init__(self, url: str, program_id: str) -> None:
        self.url = url
        self.program_id = program_id
        self._pools: dict[int, Any] = {}

    async def record(self, connection: Any, sale: dict[str, Any]) -> None:
        """One sale and its lines, in one transaction: one read, the calculation, one write."""
        program_id = self.program_id
        at = datetime.fromisoformat(sale["occurred_at"].replace("Z", "+00:00"))
        amount = Decimal(sale["amount"])
        async with connection.transaction():
            context = await connection.fetchrow(
                CONTEXT.sql,
                *CONTEXT.args(
                    {
                        "program_id": program_id,
                        "sale_ids": [sale["id"]],
                        "seller_ids": [sale["member_id"]],
                        "categories": ["product"],
                        "ats": [at],
                    }
                ),
            )
            plan = plan_of(program_id, context["version"], context["body"], sale["currency"])
            people = [
                Participant(m, s, v, e)
                for m, s, v, e in zip(
                    context["members"],
                    context["statuses"],
                    context["volumes"],
                    context["enrolled_ats"],
                    strict=True,
                )
            ]
            calculation = calculate(
                plan,
                SaleFacts(sale["id"], sale["member_id"], amount, "product", sale["currency"], at),
                people[0],
                people[1:],
            )
            fingerprint = hashlib.sha256(
                json.dumps(
                    {
                        "member_id": sale["member_id"],
                        "amount": _money(amount),
                        "volume": _money(amount),
                        "currency": sale["currency"],
                        "category": "product",
                        "subscription_id": None,
                        "customer": "retail",
                        "occurred_at": at.timestamp(),
                    },
                    sort_keys=True,
                    separators=(",", ":"),
                ).encode()
            ).hexdigest()
            new_sale = NewSale(
                sale_id=sale["id"],
                member_id=sale["member_id"],
                amount=amount,
                volume=amount,
                currency=sale["currency"],
                category="product",
                subscription_id=None,
                customer="retail",
                occurred_at=at,
                period=at.strftime("%Y-%m"),
                plan_version=context["version"],
                fingerprint=fingerprint,
                skipped_levels=skipped_levels_json(calculation.decisions),
                lines=[new_line(line) for line in calculation.lines],
            )
            written = await connection.fetch(
                WRITE.sql, *WRITE.args(write_parameters(program_id, [new_sale]))
            )
            if not written:
                raise RuntimeError(f"sale {sale['id']} exists")

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()

    async def run(
        self,
        sellers: list[str],
        *,
        count: int,
        clients: int,
        tag: str,
        cpu: Callable[[], CpuSnapshot],
    ) -> Load:
        """`count` sales from `clients` concurrent workers, each on its own connection of a
        pool of that size (kept from one run to the next, like the service's pool, so that
        its prepared statements are warm)."""
        if clients not in self._pools:
            self._pools[clients] = await asyncpg.create_pool(
                **connect_options(self.url), min_size=clients, max_size=clients
            )
        pool = self._pools[clients]
        numbers = itertools.count()
        latencies: list[float] = []
        errors = 0
        first_error: str | None = None

        async def worker(index: int) -> None:
            nonlocal errors, first_error
            rng = random.Random(f"{tag}-{index}")
            async with pool.acquire() as connection:
                while (number := next(numbers)) < count:
                    sale = new_sale(f"{tag}-{number}", rng.choice(sellers), rng)
                    started = time.perf_counter()
                    try:
                        await self.record(connection, sale)
                    except (asyncpg.PostgresError, RuntimeError) as error:
                        errors += 1
                        first_error = first_error or f"{type(error).__name__}: {error}"
                        continue
                    latencies.append(time.perf_counter() - started)

        before = cpu()
        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        seconds = time.perf_counter() - started
        use = CpuUse.between(before, cpu())
        return Load(count - errors, seconds, latencies, errors, first_error, use)
