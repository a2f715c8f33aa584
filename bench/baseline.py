"""The bare-SQL baseline: the work of one sale, as `service/services/sales.py` record_sale
does it, without HTTP, the ORM layer or anything else: in one transaction per sale,
UPLINE_FOR_SALE, the pure `calculate`, INSERT_SALE, INSERT_LINES and ADD_VOLUME, the very
statements of `service/db/sales.py`, sent by asyncpg from a pool of as many connections as
the service has clients."""

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
from service.db.sales import ADD_VOLUME, INSERT_LINES, INSERT_SALE, UPLINE_FOR_SALE
from service.domain.calculator import LevelDecision, Participant, SaleFacts, calculate
from service.domain.plan import Compression, Plan


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


UPLINE = Statement(UPLINE_FOR_SALE)
SALE = Statement(INSERT_SALE)
LINES = Statement(INSERT_LINES)
VOLUME = Statement(ADD_VOLUME)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _decision(decision: LevelDecision) -> dict[str, Any]:
    return {
        "level": decision.level,
        "member_id": decision.member_id,
        "paid": decision.paid,
        "paid_level": decision.paid_level,
        "rate": None if decision.rate is None else str(decision.rate),
        "amount": None if decision.amount is None else _money(decision.amount),
        "reason": None if decision.reason is None else decision.reason.value,
    }


class BareSql:
    def __init__(self, url: str, program_id: str, plan: Plan, plan_version: int) -> None:
        self.url = url
        self.program_id = program_id
        self.plan = plan
        self.plan_version = plan_version
        self._pools: dict[int, Any] = {}

    async def record(self, connection: Any, sale: dict[str, Any]) -> None:
        """One sale and its lines, in one transaction."""
        program_id, plan = self.program_id, self.plan
        at = datetime.fromisoformat(sale["occurred_at"].replace("Z", "+00:00"))
        amount = Decimal(sale["amount"])
        rates = plan.rates_for("product")
        activity = plan.activity
        async with connection.transaction():
            rows = await connection.fetch(
                UPLINE.sql,
                *UPLINE.args(
                    {
                        "program_id": program_id,
                        "seller_id": sale["member_id"],
                        "at": at,
                        "depth": rates.depth if rates is not None else 0,
                        "dynamic": plan.compression is Compression.DYNAMIC,
                        "window_start": None,
                        "min_volume": activity.min_personal_volume if activity else None,
                    }
                ),
            )
            people = [Participant(r["member_id"], r["status"], r["personal_volume"]) for r in rows]
            calculation = calculate(
                plan,
                SaleFacts(sale["id"], sale["member_id"], amount, "product", sale["currency"]),
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
            period = at.strftime("%Y-%m")
            common = {
                "program_id": program_id,
                "sale_id": sale["id"],
                "period": period,
                "plan_version": self.plan_version,
            }
            inserted = await connection.fetchrow(
                SALE.sql,
                *SALE.args(
                    {
                        **common,
                        "member_id": sale["member_id"],
                        "amount": amount,
                        "volume": amount,
                        "currency": sale["currency"],
                        "category": "product",
                        "subscription_id": None,
                        "customer": "retail",
                        "occurred_at": at,
                        "fingerprint": fingerprint,
                        "decisions": json.dumps([_decision(d) for d in calculation.decisions]),
                    }
                ),
            )
            if inserted is None:
                raise RuntimeError(f"sale {sale['id']} exists")
            lines = calculation.lines
            await connection.fetch(
                LINES.sql,
                *LINES.args(
                    {
                        **common,
                        "refund_id": None,
                        "source_member_id": sale["member_id"],
                        "earners": [line.earner_id for line in lines],
                        "kinds": [line.kind.value for line in lines],
                        "levels": [line.level for line in lines],
                        "paid_levels": [line.paid_level for line in lines],
                        "rates": [line.rate for line in lines],
                        "bases": [line.base for line in lines],
                        "amounts": [line.amount for line in lines],
                    }
                ),
            )
            await connection.execute(
                VOLUME.sql,
                *VOLUME.args(
                    {
                        "program_id": program_id,
                        "member_id": sale["member_id"],
                        "period": period,
                        "volume": amount,
                        "residual_volume": Decimal(0),
                        "sales": 1,
                    }
                ),
            )

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
