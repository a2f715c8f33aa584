"""Closing the months and exporting their statements, through the HTTP API as finance would,
each beside a bare-SQL baseline measured in the same run.

Every month that has ended closes in order, oldest first (a close is refused while an
earlier month with activity is open): `POST /v1/periods/{period}/close` with the admin key,
timed from the request to the answer; the first month is also closed with `?dry_run=true`
just before. After each close, the bare aggregate a close cannot do without (the month's
lines added up per earner) is timed on its own. Then the statements CSV of the month with
the most statements is downloaded (streamed, counted, its header checked) while the service's
memory is sampled, and a bare `COPY ... TO STDOUT WITH CSV` of the same columns is timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench.database import connect_options
from bench.procs import CpuSnapshot, CpuUse, Watched
from service.domain.periods import has_ended

CSV_HEADER = (
    b"member_id,name,rank,personal,override,reversal,bonus,earned,carried_in,payable,"
    b"carried_out,currency\r\n"
)
TIMEOUT = httpx.Timeout(3600.0)

# The close's irreducible work: every line of the month read and added up per earner.
BASELINE_AGGREGATE = """
    SELECT count(*) AS earners, COALESCE(sum(lines), 0) AS lines
    FROM (SELECT earner_id, sum(amount) AS earned, count(*) AS lines
          FROM commission_lines
          WHERE program_id = $1 AND period = $2
          GROUP BY earner_id) e
"""

# What the CSV holds, straight out of the table, in the same order.
BASELINE_COPY = """
    SELECT member_id, name, rank, personal, override, reversal, bonus, earned, carried_in,
           payable, carried_out, CAST($3 AS text) AS currency
    FROM statements
    WHERE program_id = $1 AND period = $2
    ORDER BY member_id
"""


@dataclass(frozen=True)
class Close:
    """One month's close, and the bare aggregate of its lines."""

    period: str
    sales: int  # sales of the month in the generated events
    statements: int  # from the close's summary
    seconds: float  # wall time of the request
    cpu: CpuUse
    baseline_seconds: float
    lines: int  # the month's lines, counted by the baseline
    earners: int  # members with a line, counted by the baseline
    dry_run_seconds: float | None = None
    dry_run_statements: int | None = None
    ranks: dict[str, int] = field(default_factory=dict)  # members paid as each rank
    bonus: dict[str, str] = field(default_factory=dict)  # bonus totals by kind

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.baseline_seconds if self.baseline_seconds > 0 else None


@dataclass(frozen=True)
class CsvExport:
    """The statements CSV of one month, downloaded once, and a bare COPY of it."""

    period: str
    statements: int  # the close's count
    rows: int  # lines of the CSV, the header included
    bytes: int
    header_ok: bool
    status: int
    content_type: str
    seconds: float  # request sent to last byte received
    first_byte_seconds: float
    cpu: CpuUse
    rss_before: int | None  # the service (all its processes) just before the request
    rss_peak: int | None  # at most while it answered
    copy_seconds: float
    copy_rows: int
    copy_bytes: int

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.copy_seconds if self.copy_seconds > 0 else None

    @property
    def growth(self) -> float | None:
        if not self.rss_before or not self.rss_peak:
            return None
        return max(0.0, self.rss_peak / self.rss_before - 1)


@dataclass
class PeriodsRun:
    closes: list[Close] = field(default_factory=list)
    csv: CsvExport | None = None
    errors: list[str] = field(default_factory=list)


def ended_months(by_month: dict[str, int], timezone: str, now: datetime) -> list[str]:
    """The months with generated sales that have ended, oldest first."""
    return sorted(month for month in by_month if has_ended(month, timezone, now))


async def measure(
    *,
    base_url: str,
    key: str,
    database_url: str,
    program_id: str,
    currency: str,
    timezone: str,
    by_month: dict[str, int],
    cpu: Callable[[], CpuSnapshot],
    service: Watched,
    say: Callable[[str], None],
) -> PeriodsRun:
    run = PeriodsRun()
    months = ended_months(by_month, timezone, datetime.now(UTC))
    connection = await asyncpg.connect(**connect_options(database_url))
    try:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT
        ) as client:
            for index, period in enumerate(months):
                dry: tuple[float, dict[str, Any]] | None = None
                if index == 0:
                    say(f"dry run of the close of {period}")
                    dry = await _close(client, period, dry_run=True)
                    if "statements" not in dry[1]:
                        run.errors.append(f"dry run of {period}: {dry[1]}")
                        dry = None
                before = cpu()
                seconds, answer = await _close(client, period, dry_run=False)
                use = CpuUse.between(before, cpu())
                if answer.get("status") != "closed":
                    run.errors.append(f"close of {period}: {answer}")
                    break  # a later month cannot close while this one is open
                baseline_seconds, earners, lines = await _aggregate(connection, program_id, period)
                run.closes.append(
                    Close(
                        period=period,
                        sales=by_month[period],
                        statements=int(answer["statements"]),
                        seconds=seconds,
                        cpu=use,
                        baseline_seconds=baseline_seconds,
                        lines=lines,
                        earners=earners,
                        dry_run_seconds=None if dry is None else dry[0],
                        dry_run_statements=None if dry is None else int(dry[1]["statements"]),
                        ranks=dict(answer.get("ranks", {})),
                        bonus=dict(answer.get("totals", {}).get("bonus", {})),
                    )
                )
                say(
                    f"closed {period}: {answer['statements']:,} statements in {seconds:.2f} s "
                    f"(bare aggregate {baseline_seconds:.2f} s)"
                )
            if run.closes:
                # The month with the most statements; the latest of equals.
                widest = max(run.closes, key=lambda close: (close.statements, close.period))
                say(f"statements CSV of {widest.period}")
                run.csv = await _export(
                    client, connection, program_id, currency, widest, cpu, service
                )
    finally:
        await connection.close()
    return run


async def _close(
    client: httpx.AsyncClient, period: str, *, dry_run: bool
) -> tuple[float, dict[str, Any]]:
    """One close request: its wall time, and its answer (a problem's body when refused)."""
    params = {"dry_run": "true"} if dry_run else {}
    started = time.perf_counter()
    try:
        response = await client.post(f"/v1/periods/{period}/close", params=params)
    except httpx.HTTPError as error:
        return time.perf_counter() - started, {"error": f"{type(error).__name__}: {error}"}
    seconds = time.perf_counter() - started
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        answer = {"text": response.text[:300]}
    if response.status_code != 200:
        answer = {"http_status": response.status_code, **answer}
    return seconds, answer


async def _aggregate(connection: Any, program_id: str, period: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    row = await connection.fetchrow(BASELINE_AGGREGATE, program_id, period)
    seconds = time.perf_counter() - started
    return seconds, int(row["earners"]), int(row["lines"])


async def _export(
    client: httpx.AsyncClient,
    connection: Any,
    program_id: str,
    currency: str,
    close: Close,
    cpu: Callable[[], CpuSnapshot],
    service: Watched,
) -> CsvExport:
    path = f"/v1/periods/{close.period}/statements"
    rows = size = 0
    head = b""
    first_byte: float | None = None
    # Samples of our own around the request as well: a small export ends between two of
    # the sampler's.
    since = time.monotonic()
    service.sample(since)
    rss_before = service.samples[-1][1] if service.samples else None
    before = cpu()
    started = time.perf_counter()
    async with client.stream("GET", path, headers={"Accept": "text/csv"}) as response:
        async for chunk in response.aiter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            if len(head) < len(CSV_HEADER):
                head += chunk[: len(CSV_HEADER) - len(head)]
            rows += chunk.count(b"\n")
            size += len(chunk)
    seconds = time.perf_counter() - started
    use = CpuUse.between(before, cpu())
    until = time.monotonic()
    service.sample(until)
    copy_seconds, copy_rows, copy_bytes = await _copy(connection, program_id, currency, close)
    return CsvExport(
        period=close.period,
        statements=close.statements,
        rows=rows,
        bytes=size,
        header_ok=head == CSV_HEADER,
        status=response.status_code,
        content_type=response.headers.get("content-type", ""),
        seconds=seconds,
        first_byte_seconds=first_byte if first_byte is not None else seconds,
        cpu=use,
        rss_before=rss_before,
        rss_peak=service.peak(since=since, until=until),
        copy_seconds=copy_seconds,
        copy_rows=copy_rows,
        copy_bytes=copy_bytes,
    )


async def _copy(
    connection: Any, program_id: str, currency: str, close: Close
) -> tuple[float, int, int]:
    """A bare COPY of the same columns in the same order, with a header, counted as it
    arrives (kept in no memory)."""
    rows = size = 0

    async def count(chunk: bytes) -> None:
        nonlocal rows, size
        rows += chunk.count(b"\n")
        size += len(chunk)

    started = time.perf_counter()
    await connection.copy_from_query(
        BASELINE_COPY, program_id, close.period, currency, output=count, format="csv", header=True
    )
    return time.perf_counter() - started, rows, size
