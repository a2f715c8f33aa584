"""SQL for sales, refunds, the commission ledger and per-period volumes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import commission_lines, refunds, sales


@dataclass(frozen=True, slots=True)
class SaleRow:
    sale_id: str
    member_id: str
    amount: Decimal
    volume: Decimal
    currency: str
    category: str
    subscription_id: str | None
    customer: str
    occurred_at: datetime
    period: str
    plan_version: int
    refunded: Decimal
    refunded_volume: Decimal
    fingerprint: str
    skipped_levels: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RefundRow:
    refund_id: str
    sale_id: str
    member_id: str
    amount: Decimal
    volume: Decimal
    occurred_at: datetime
    period: str
    fingerprint: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LineRow:
    """A ledger line. A bonus line (`kind` bonus, `bonus` its kind of bonus) has no sale."""

    line_id: int
    sale_id: str | None
    refund_id: str | None
    earner_id: str
    source_member_id: str
    kind: str
    level: int
    paid_level: int
    rate: Decimal
    base: Decimal
    amount: Decimal
    period: str
    plan_version: int
    created_at: datetime
    bonus: str | None = None


@dataclass(frozen=True, slots=True)
class NewLine:
    """A ledger line to write; the database gives it its id and time."""

    earner_id: str
    kind: str
    level: int
    paid_level: int
    rate: Decimal
    base: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class UplineEntry:
    """A member met walking up from a seller (level 0 is the seller), as they are now, with
    their net personal volume in the plan's activity window before the sale and their rank
    in force (the paid-as rank of the latest closed period)."""

    member_id: str
    status: str
    level: int
    personal_volume: Decimal
    enrolled_at: datetime
    rank: str | None = None


_SALE_COLUMNS = tuple(c for c in sales.c if c.name != "program_id")
_REFUND_COLUMNS = tuple(c for c in refunds.c if c.name != "program_id")
_LINE_COLUMNS = tuple(c for c in commission_lines.c if c.name != "program_id")


def _sale(mapping: Any) -> SaleRow:
    return SaleRow(**{c.name: mapping[c.name] for c in _SALE_COLUMNS})


def _refund(mapping: Any) -> RefundRow:
    return RefundRow(**{c.name: mapping[c.name] for c in _REFUND_COLUMNS})


def _line(mapping: Any) -> LineRow:
    return LineRow(**{c.name: mapping[c.name] for c in _LINE_COLUMNS})


async def get_sale(
    session: AsyncSession, program_id: str, sale_id: str, *, for_update: bool = False
) -> SaleRow | None:
    statement = select(*_SALE_COLUMNS).where(
        sales.c.program_id == program_id, sales.c.sale_id == sale_id
    )
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    return _sale(row._mapping) if row is not None else None


INSERT_LINES = text(
    """
    INSERT INTO commission_lines (program_id, sale_id, refund_id, earner_id, source_member_id,
                                  kind, level, paid_level, rate, base, amount, period,
                                  plan_version)
    SELECT :program_id, :sale_id, :refund_id, l.earner_id, :source_member_id, l.kind, l.level,
           l.paid_level, l.rate, l.base, l.amount, :period, :plan_version
    FROM unnest(CAST(:earners AS text[]), CAST(:kinds AS text[]), CAST(:levels AS int[]),
                CAST(:paid_levels AS int[]), CAST(:rates AS numeric[]),
                CAST(:bases AS numeric[]), CAST(:amounts AS numeric[]))
         WITH ORDINALITY AS l(earner_id, kind, level, paid_level, rate, base, amount, position)
    ORDER BY l.position
    RETURNING line_id, sale_id, refund_id, earner_id, source_member_id, kind, level,
              paid_level, rate, base, amount, period, plan_version, created_at, bonus
    """
)


async def insert_lines(
    session: AsyncSession,
    program_id: str,
    *,
    sale_id: str,
    refund_id: str | None,
    source_member_id: str,
    period: str,
    plan_version: int,
    lines: list[NewLine],
) -> list[LineRow]:
    """Write a sale's (or a refund's) lines in one statement, in the order given."""
    if not lines:
        return []
    rows = await session.execute(
        INSERT_LINES,
        {
            "program_id": program_id,
            "sale_id": sale_id,
            "refund_id": refund_id,
            "source_member_id": source_member_id,
            "period": period,
            "plan_version": plan_version,
            "earners": [line.earner_id for line in lines],
            "kinds": [line.kind for line in lines],
            "levels": [line.level for line in lines],
            "paid_levels": [line.paid_level for line in lines],
            "rates": [line.rate for line in lines],
            "bases": [line.base for line in lines],
            "amounts": [line.amount for line in lines],
        },
    )
    return sorted((_line(r._mapping) for r in rows), key=lambda line: line.line_id)


async def lines_of_sale(session: AsyncSession, program_id: str, sale_id: str) -> list[LineRow]:
    rows = await session.execute(
        select(*_LINE_COLUMNS)
        .where(commission_lines.c.program_id == program_id, commission_lines.c.sale_id == sale_id)
        .order_by(commission_lines.c.line_id)
    )
    return [_line(r._mapping) for r in rows]


_LABELS_LOCK = "hashtextextended('labels:' || :program_id, 0)"
_HOLD_LABELS = f"pg_advisory_xact_lock_shared({_LABELS_LOCK})"
"""Held (shared) from before a volume row is written with its member's tree labels until the
transaction ends: a relabelling waits for it before it moves the labels of volume rows
(migration 0009). SALE_CONTEXT takes it for the sales it reads."""
HOLD_LABELS = text(f"SELECT {_HOLD_LABELS}")


async def lock_labels(session: AsyncSession, program_id: str) -> None:
    """Hold the program's tree labels alone (what a relabelling takes, migration 0009): no
    sale or refund of the program writes a volume row until this transaction ends."""
    await session.execute(
        text(f"SELECT pg_advisory_xact_lock({_LABELS_LOCK})"), {"program_id": program_id}
    )


ADD_VOLUME = text(
    """
    INSERT INTO member_period_volumes
        (program_id, member_id, period, lo, depth, volume, residual_volume, sales)
    SELECT :program_id, m.member_id, :period, m.lo, m.depth, :volume, :residual_volume, :sales
    FROM members m WHERE m.program_id = :program_id AND m.member_id = :member_id
    ON CONFLICT (program_id, member_id, period) DO UPDATE SET
        volume = member_period_volumes.volume + EXCLUDED.volume,
        residual_volume = member_period_volumes.residual_volume + EXCLUDED.residual_volume,
        sales = member_period_volumes.sales + EXCLUDED.sales
    """
)


async def add_volume(
    session: AsyncSession,
    program_id: str,
    *,
    member_id: str,
    period: str,
    volume: Decimal,
    residual: bool,
    sales_count: int,
) -> None:
    """Add (or, for a refund, take away) volume to the member's net volume of the period."""
    await session.execute(HOLD_LABELS, {"program_id": program_id})  # before labels are read
    await session.execute(
        ADD_VOLUME,
        {
            "program_id": program_id,
            "member_id": member_id,
            "period": period,
            "volume": volume,
            "residual_volume": volume if residual else Decimal(0),
            "sales": sales_count,
        },
    )


async def get_refund(session: AsyncSession, program_id: str, refund_id: str) -> RefundRow | None:
    row = (
        await session.execute(
            select(*_REFUND_COLUMNS).where(
                refunds.c.program_id == program_id, refunds.c.refund_id == refund_id
            )
        )
    ).one_or_none()
    return _refund(row._mapping) if row is not None else None


async def refunds_of_sale(session: AsyncSession, program_id: str, sale_id: str) -> list[RefundRow]:
    rows = await session.execute(
        select(*_REFUND_COLUMNS)
        .where(refunds.c.program_id == program_id, refunds.c.sale_id == sale_id)
        .order_by(refunds.c.created_at, refunds.c.refund_id)
    )
    return [_refund(r._mapping) for r in rows]


async def insert_refund(session: AsyncSession, program_id: str, values: dict[str, Any]) -> bool:
    """Insert the refund; False when its id is taken."""
    result = await session.execute(
        text(
            """
            INSERT INTO refunds (program_id, refund_id, sale_id, member_id, amount, volume,
                                 occurred_at, period, fingerprint)
            VALUES (:program_id, :refund_id, :sale_id, :member_id, :amount, :volume,
                    :occurred_at, :period, :fingerprint)
            ON CONFLICT (program_id, refund_id) DO NOTHING
            RETURNING refund_id
            """
        ),
        {**values, "program_id": program_id},
    )
    return result.one_or_none() is not None


async def add_refunded(
    session: AsyncSession, program_id: str, sale_id: str, *, amount: Decimal, volume: Decimal
) -> None:
    await session.execute(
        text(
            """
            UPDATE sales SET refunded = refunded + :amount,
                             refunded_volume = refunded_volume + :volume
            WHERE program_id = :program_id AND sale_id = :sale_id
            """
        ),
        {"program_id": program_id, "sale_id": sale_id, "amount": amount, "volume": volume},
    )


@dataclass(frozen=True, slots=True)
class PayableSale:
    """What the context query needs of a sale to be paid."""

    sale_id: str
    seller_id: str
    category: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class SaleContext:
    """Everything a sale's calculation reads, as it is now.

    `plan_body` is the JSON text of the version in force at the sale (None: no version);
    `existing_fingerprint` is set when the sale id is taken; `upline` is None when the
    seller is unknown, else the seller (level 0) and as much upline as the plan can pay.
    """

    plan_version: int | None
    plan_body: str | None
    existing_fingerprint: str | None
    upline: list[UplineEntry] | None


# Every sale of a batch (one sale for a REST call) in one round trip: the plan version in
# force at each sale, whether its id is taken, and its seller's upline, walked only as far as
# that plan can pay. Without compression that is the plan's depth for the sale's category
# (plus the first member beyond, to show why it was not paid); with dynamic compression
# unqualified members do not use up a level, so the walk goes on until `depth` qualified
# members are found (plus the next one). "Qualified" mirrors the domain rule
# (service/domain/calculator.py): enrolled at or before the sale, status active and, with an
# activity rule, at least its volume of net personal sales in [at - window, at)
# (tests/db/test_sale_context.py keeps the two equal). Depth, compression and the activity
# rule are read from the version's JSON. It also takes the shared hold on the program's tree
# labels that WRITE_SALES needs for the sellers' volume rows.
SALE_CONTEXT = text(
    f"""
    WITH RECURSIVE
    input AS (
        SELECT * FROM unnest(CAST(:sale_ids AS text[]), CAST(:seller_ids AS text[]),
                             CAST(:categories AS text[]), CAST(:ats AS timestamptz[]))
                 WITH ORDINALITY AS i(sale_id, seller_id, category, at, pos)
    ),
    ctx AS (
        SELECT i.pos, i.sale_id, i.seller_id, i.at, p.version, p.body,
               COALESCE(jsonb_array_length(p.body -> 'categories' -> i.category -> 'level_rates'),
                        0) AS depth,
               COALESCE(p.body ->> 'compression' = 'dynamic', false) AS dynamic,
               CAST(p.body -> 'activity' ->> 'min_personal_volume' AS numeric) AS min_volume,
               i.at - make_interval(days => CAST(p.body -> 'activity' ->> 'window_days' AS int))
                   AS window_start
        FROM input i
        LEFT JOIN LATERAL (
            SELECT v.version, v.body FROM plan_versions v
            WHERE v.program_id = :program_id AND v.effective_from <= i.at
            ORDER BY v.effective_from DESC, v.version DESC
            LIMIT 1
        ) p ON true
    ),
    up(pos, member_id, sponsor_id, status, enrolled_at, rank, level, personal_volume,
       qualified, qualified_so_far) AS (
        SELECT c.pos, m.member_id, m.sponsor_id, m.status, m.enrolled_at, m.rank, 0,
               CAST(0 AS numeric), false, 0
        FROM ctx c
        JOIN members m ON m.program_id = :program_id AND m.member_id = c.seller_id
      UNION ALL
        SELECT up.pos, s.member_id, s.sponsor_id, s.status, s.enrolled_at, s.rank,
               up.level + 1, w.volume, q.ok, up.qualified_so_far + q.ok::int
        FROM up
        JOIN ctx c ON c.pos = up.pos
        JOIN members s ON s.program_id = :program_id AND s.member_id = up.sponsor_id
        CROSS JOIN LATERAL (
            SELECT CASE WHEN c.window_start IS NULL THEN CAST(0 AS numeric)
            ELSE COALESCE((
                    SELECT sum(x.volume) FROM sales x
                    WHERE x.program_id = :program_id AND x.member_id = s.member_id
                      AND x.occurred_at >= c.window_start AND x.occurred_at < c.at), 0)
                 - COALESCE((
                    SELECT sum(r.volume) FROM refunds r
                    WHERE r.program_id = :program_id AND r.member_id = s.member_id
                      AND r.occurred_at >= c.window_start AND r.occurred_at < c.at), 0)
            END AS volume
        ) w
        CROSS JOIN LATERAL (
            SELECT s.status = 'active' AND s.enrolled_at <= c.at
                   AND (c.min_volume IS NULL OR w.volume >= c.min_volume) AS ok
        ) q
        WHERE c.version IS NOT NULL
          AND CASE WHEN c.dynamic THEN up.qualified_so_far - up.qualified::int < c.depth
                   ELSE up.level <= c.depth END
    ),
    chains AS (
        SELECT pos, array_agg(member_id ORDER BY level) AS members,
               array_agg(status ORDER BY level) AS statuses,
               array_agg(personal_volume ORDER BY level) AS volumes,
               array_agg(enrolled_at ORDER BY level) AS enrolled_ats,
               array_agg(rank ORDER BY level) AS ranks
        FROM up GROUP BY pos
    )
    SELECT c.pos, c.version, CAST(c.body AS text) AS body, e.fingerprint AS existing,
           ch.members, ch.statuses, ch.volumes, ch.enrolled_ats, ch.ranks
    FROM ctx c
    CROSS JOIN (SELECT {_HOLD_LABELS}) AS labels_held
    LEFT JOIN sales e ON e.program_id = :program_id AND e.sale_id = c.sale_id
    LEFT JOIN chains ch ON ch.pos = c.pos
    ORDER BY c.pos
    """  # noqa: S608 - the lock's SQL is a constant
)


async def sale_contexts(
    session: AsyncSession, program_id: str, requests: list[PayableSale]
) -> list[SaleContext]:
    """The context of each sale, in the order asked, in one query."""
    if not requests:
        return []
    rows = await session.execute(
        SALE_CONTEXT,
        {
            "program_id": program_id,
            "sale_ids": [r.sale_id for r in requests],
            "seller_ids": [r.seller_id for r in requests],
            "categories": [r.category for r in requests],
            "ats": [r.occurred_at for r in requests],
        },
    )
    contexts = []
    for row in rows:
        upline = None
        if row.members is not None:
            upline = [
                UplineEntry(
                    member_id=m, status=s, level=level, personal_volume=v, enrolled_at=e, rank=r
                )
                for level, (m, s, v, e, r) in enumerate(
                    zip(
                        row.members,
                        row.statuses,
                        row.volumes,
                        row.enrolled_ats,
                        row.ranks,
                        strict=True,
                    )
                )
            ]
        contexts.append(
            SaleContext(
                plan_version=row.version,
                plan_body=row.body,
                existing_fingerprint=row.existing,
                upline=upline,
            )
        )
    return contexts


@dataclass(frozen=True, slots=True)
class NewSale:
    """A sale to write with its lines; its seller's period volume grows with it."""

    sale_id: str
    member_id: str
    amount: Decimal
    volume: Decimal
    currency: str
    category: str
    subscription_id: str | None
    customer: str
    occurred_at: datetime
    period: str  # the month of occurred_at; WRITE_SALES books a closed one in the oldest open
    plan_version: int
    fingerprint: str
    skipped_levels: str
    lines: list[NewLine]


# The sales of a batch, their lines (in the order given: line ids follow it) and their
# sellers' period volumes, in one statement. A line names its sale by its position in the
# batch and takes the sale's id, seller, period, plan version and volume (its base) from it.
# A sale whose id was taken meanwhile is not inserted, and neither are its lines or volume.
# A volume row takes its seller's tree labels: the transaction must hold HOLD_LABELS, as
# SALE_CONTEXT, read before, does. A sale of a closed month is booked, with its lines and
# volume, in the program's oldest open period (`programs.open_from`), read here: a close
# takes HOLD_LABELS' lock alone, so this statement, which begins after SALE_CONTEXT took it
# shared, sees every close committed before and none can commit until the sale does.
WRITE_SALES = text(
    """
    WITH input AS (
        SELECT *, GREATEST(s.month, o.open_from) AS period
        FROM unnest(CAST(:sale_ids AS text[]), CAST(:member_ids AS text[]),
                             CAST(:amounts AS numeric[]), CAST(:volumes AS numeric[]),
                             CAST(:currencies AS text[]), CAST(:categories AS text[]),
                             CAST(:subscription_ids AS text[]), CAST(:customers AS text[]),
                             CAST(:occurred_ats AS timestamptz[]), CAST(:periods AS text[]),
                             CAST(:plan_versions AS int[]), CAST(:fingerprints AS text[]),
                             CAST(:skipped_levels AS text[]))
             WITH ORDINALITY AS s(sale_id, member_id, amount, volume, currency, category,
                                  subscription_id, customer, occurred_at, month, plan_version,
                                  fingerprint, skipped_levels, position)
        CROSS JOIN (SELECT open_from FROM programs WHERE program_id = :program_id) o
    ),
    new_sales AS (
        INSERT INTO sales (program_id, sale_id, member_id, amount, volume, currency, category,
                           subscription_id, customer, occurred_at, period, plan_version,
                           fingerprint, skipped_levels)
        SELECT :program_id, s.sale_id, s.member_id, s.amount, s.volume, s.currency, s.category,
               s.subscription_id, s.customer, s.occurred_at, s.period, s.plan_version,
               s.fingerprint, CAST(s.skipped_levels AS jsonb)
        FROM input s
        ON CONFLICT (program_id, sale_id) DO NOTHING
        RETURNING sale_id, member_id, volume, period, subscription_id
    ),
    new_lines AS (
        INSERT INTO commission_lines (program_id, sale_id, earner_id, source_member_id, kind,
                                      level, paid_level, rate, base, amount, period,
                                      plan_version)
        SELECT :program_id, s.sale_id, l.earner_id, s.member_id, l.kind, l.level,
               l.paid_level, l.rate, s.volume, l.amount, s.period, s.plan_version
        FROM unnest(CAST(:line_sales AS bigint[]), CAST(:line_earners AS text[]),
                    CAST(:line_kinds AS text[]), CAST(:line_levels AS int[]),
                    CAST(:line_paid_levels AS int[]), CAST(:line_rates AS numeric[]),
                    CAST(:line_amounts AS numeric[]))
             WITH ORDINALITY AS l(sale, earner_id, kind, level, paid_level, rate, amount,
                                  position)
        JOIN input s ON s.position = l.sale
        WHERE s.sale_id IN (SELECT sale_id FROM new_sales)
        ORDER BY l.position
    ),
    volumes AS (
        INSERT INTO member_period_volumes
            (program_id, member_id, period, lo, depth, volume, residual_volume, sales)
        SELECT :program_id, n.member_id, n.period, m.lo, m.depth, sum(n.volume),
               sum(CASE WHEN n.subscription_id IS NULL THEN 0 ELSE n.volume END), count(*)
        FROM new_sales n
        JOIN members m ON m.program_id = :program_id AND m.member_id = n.member_id
        GROUP BY n.member_id, n.period, m.lo, m.depth
        ORDER BY n.member_id, n.period  -- one lock order for concurrent batches: no deadlock
        ON CONFLICT (program_id, member_id, period) DO UPDATE SET
            volume = member_period_volumes.volume + EXCLUDED.volume,
            residual_volume = member_period_volumes.residual_volume + EXCLUDED.residual_volume,
            sales = member_period_volumes.sales + EXCLUDED.sales
    )
    SELECT sale_id, period FROM new_sales
    """
)


def write_parameters(program_id: str, sales: list[NewSale]) -> dict[str, Any]:
    """The parameters of WRITE_SALES for these sales (each line's base is its sale's volume)."""
    line_sales: list[int] = []
    lines: list[NewLine] = []
    for position, sale in enumerate(sales, start=1):
        line_sales.extend(itertools.repeat(position, len(sale.lines)))
        lines.extend(sale.lines)
    return {
        "program_id": program_id,
        "sale_ids": [s.sale_id for s in sales],
        "member_ids": [s.member_id for s in sales],
        "amounts": [s.amount for s in sales],
        "volumes": [s.volume for s in sales],
        "currencies": [s.currency for s in sales],
        "categories": [s.category for s in sales],
        "subscription_ids": [s.subscription_id for s in sales],
        "customers": [s.customer for s in sales],
        "occurred_ats": [s.occurred_at for s in sales],
        "periods": [s.period for s in sales],
        "plan_versions": [s.plan_version for s in sales],
        "fingerprints": [s.fingerprint for s in sales],
        "skipped_levels": [s.skipped_levels for s in sales],
        "line_sales": line_sales,
        "line_earners": [line.earner_id for line in lines],
        "line_kinds": [line.kind for line in lines],
        "line_levels": [line.level for line in lines],
        "line_paid_levels": [line.paid_level for line in lines],
        "line_rates": [line.rate for line in lines],
        "line_amounts": [line.amount for line in lines],
    }


async def write_sales(
    session: AsyncSession, program_id: str, sales: list[NewSale]
) -> dict[str, str]:
    """Write the sales, their lines and volumes in one statement; answers the period each
    sale written was booked in, by sale id (a sale's own period unless it is closed)."""
    if not sales:
        return {}
    rows = await session.execute(WRITE_SALES, write_parameters(program_id, sales))
    return {row.sale_id: row.period for row in rows}
