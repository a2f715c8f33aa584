"""The benchmark (`python -m bench`) end to end at a tiny scale, on the tests' server."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bench.database import connect_options
from service.domain.periods import has_ended

ROOT = Path(__file__).resolve().parent.parent

GOALS = (
    "HTTP single-sale throughput / bare SQL, 16 clients",
    "HTTP single-sale p99, 16 clients",
    "POST /v1/events, batches of 50",
    "bulk import (`commissions import`), whole program",
    "bulk import memory: peak of 2nd half over 1st half",
    "overrides, leaf",
    "overrides, team",
    "overrides, root",
    "upline, leaf",
    "upline, root",
    "upline, chain tail",
    "downline page 1, leaf",
    "downline page 1, root",
    "downline deep page, root",
    "downline/stats, root",
    "rank, leaf",
    "rank, team",
    "rank, root",
    "period close, median of",
    "period close, slowest month",
    "statements CSV, every member",
    "statements CSV memory: service peak RSS during over before",
    "service peak RSS under load",
)
# The generated sales run from 2026-01 to 2026-12: the bench closes the months that have ended
# (UTC, the program's timezone).
CLOSED = tuple(
    period
    for period in (f"2026-{month:02d}" for month in range(1, 13))
    if has_ended(period, "UTC", datetime.now(UTC))
)
PERIOD_ROW = re.compile(r"^\| (2026-\d\d) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|")
CSV_LINE = re.compile(
    r"`GET /v1/periods/(2026-\d\d)/statements` with `Accept: text/csv`: status 200, "
    r"`text/csv; charset=utf-8`; ([\d,]+) rows \(the header and ([\d,]+) statements; the "
    r"close wrote ([\d,]+)\), [\d,]+ bytes, header as expected"
)
COPY_LINE = re.compile(r"bare `COPY` of the same columns: ([\d,]+) rows")
NUMBER = re.compile(r"\d")
RANKS_ROW = re.compile(r"^\| (2026-\d\d) \| ([^|]*) \| [^|]* \| [^|]* \| [^|]* \| [^|]* \|$")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(**connect_options(url))
    try:
        return list(await connection.fetch(sql))
    finally:
        await connection.close()


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(**connect_options(url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture
async def bench_database(server_url: str) -> AsyncIterator[str]:
    """A database of its own on the tests' server, dropped afterwards."""
    name = f"commissions_bench_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
async def test_bench_runs_end_to_end(bench_database: str, tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    env = {**os.environ, "DATABASE_URL": bench_database}
    env.pop("TEST_DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        *("--members", "300", "--chain", "30", "--sales-per-member", "2"),
        *("--repeat", "1", "--clients", "8,16", "--requests", "40"),
        *("--batches", "2", "--batch-size", "50", "--read-calls", "3"),
        *("--output", str(output), "--workdir", str(tmp_path / "work")),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, stderr.decode()[-4000:]

    text = output.read_text()
    assert stdout.decode() == text  # what it prints is what it writes
    assert "python -m bench --members 300" in text
    assert "PostgreSQL " in text
    rows = {
        cells[0]: cells
        for line in text.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) == 4
    }
    for goal in GOALS:
        matching = [cells for metric, cells in rows.items() if metric.startswith(goal)]
        assert matching, f"no row for {goal!r}"
        for _, measured, target, verdict in matching:
            assert NUMBER.search(measured), f"{goal}: {measured!r}"
            assert NUMBER.search(target)
            assert verdict.startswith(("met", "**missed** by"))
    assert "applied 906, duplicates 0, refused 0" in text
    await _check_periods(text, bench_database)
    assert not list((tmp_path / "work").iterdir())  # the run's directory is cleaned up


async def _check_periods(text: str, database: str) -> None:
    """The months closed through the API are those the database holds as closed, with as
    many statements as the close answered; the CSV has one row per statement and a header."""
    closed = {
        row["period"]: row["statements"]
        for row in await _fetch(
            database,
            "SELECT c.period, (SELECT count(*) FROM statements s WHERE s.program_id ="
            " c.program_id AND s.period = c.period) AS statements FROM closed_periods c",
        )
    }
    sales = {
        row["period"]: row["sales"]
        for row in await _fetch(database, "SELECT period, count(*) AS sales FROM sales GROUP BY 1")
    }
    earners = {
        row["period"]: row["earners"]
        for row in await _fetch(
            database,
            "SELECT period, count(DISTINCT earner_id) AS earners FROM commission_lines GROUP BY 1",
        )
    }
    table = {
        match[1]: tuple(_number(cell) for cell in match.groups()[1:])
        for line in text.splitlines()
        if (match := PERIOD_ROW.match(line))
    }
    assert tuple(table) == CLOSED  # in order, oldest first; December has not ended
    assert set(closed) == set(CLOSED)
    for period, (sold, _lines, earning, statements) in table.items():
        assert sold == sales[period]
        assert earning == earners[period]
        # No payout minimum: nothing is carried, every earner (and only they) has a statement.
        assert statements == closed[period] == earners[period]
    assert "* error:" not in text
    # The ranks each close reported are those it stored.
    stored = {
        (row["period"], row["rank"]): row["members"]
        for row in await _fetch(
            database,
            "SELECT period, rank, count(*) AS members FROM period_ranks WHERE rank IS NOT NULL"
            " GROUP BY 1, 2",
        )
    }
    reported = {
        (match[1], name): _number(count)
        for line in text.splitlines()
        if (match := RANKS_ROW.match(line))
        for name, count in re.findall(r"([A-Z][a-z]+) ([\d,]+)", match[2])
    }
    assert reported == stored
    assert stored, "no member holds a rank in any month"
    first = next(line for line in text.splitlines() if line.startswith("| 2026-01 |"))
    assert f"({table['2026-01'][3]:,} statements)" in first  # the dry run counted the same

    match = CSV_LINE.search(text)
    assert match, "no CSV line"
    period, rows, statements, written = match[1], *map(_number, match.groups()[1:])
    assert closed[period] == max(closed.values())
    assert rows == statements + 1 == written + 1 == closed[period] + 1
    copied = COPY_LINE.search(text)
    assert copied
    assert _number(copied[1]) == rows
