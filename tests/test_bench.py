"""The benchmark (`python -m bench`) end to end at a tiny scale, on the tests' server."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bench.database import connect_options

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
    "service peak RSS under load",
)
NUMBER = re.compile(r"\d")


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
    assert not list((tmp_path / "work").iterdir())  # the run's directory is cleaned up
