"""A parallel import that is killed or interrupted takes its worker processes with it, and
leaves every batch applied whole or not at all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.flows import put_plan
from tests.conftest import Program

pytestmark = pytest.mark.slow

PLAN = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}
BATCH = 200
SELLERS = BATCH - 1
SALES = 100 * BATCH


def _events_file(path: Path) -> Path:
    """A root M0 and 199 members under it (one batch), then 20,000 sales of 10.00 by those
    199 (100 batches of sales only, which the workers apply two at a time)."""
    with path.open("w") as out:
        for i in range(BATCH):
            data = {
                "id": f"M{i}",
                "sponsor_id": "M0" if i else None,
                "enrolled_at": "2026-01-01T00:00:00Z",
            }
            event = {"id": f"e-M{i}", "type": "member.enrolled", "data": data}
            out.write(json.dumps({**event, "occurred_at": "2026-10-01T00:00:00Z"}) + "\n")
        for n in range(SALES):
            sale = {
                "id": f"O-{n}",
                "member_id": f"M{1 + n % SELLERS}",
                "amount": "10.00",
                "currency": "USD",
                "occurred_at": "2026-10-02T00:00:00Z",
            }
            event = {"id": f"e-O-{n}", "type": "sale.completed", "data": sale}
            out.write(json.dumps({**event, "occurred_at": "2026-10-02T00:00:00Z"}) + "\n")
    return path


async def _count(engine: AsyncEngine, table: str, program_id: str) -> int:
    async with engine.connect() as connection:
        sql = f"SELECT count(*) FROM {table} WHERE program_id = :p"  # noqa: S608 (fixed names)
        count: int = (await connection.execute(text(sql), {"p": program_id})).scalar_one()
        return count


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


def _import_command(path: Path, program: Program) -> list[str]:
    return [sys.executable, "-m", "service", "import", str(path), "--program", program.id]


# A command started from a terminal has Ctrl-C at its default, whatever the test runner
# was started with: a runner started in the background by a shell without job control
# ignores SIGINT, its children inherit that, and Python then leaves Ctrl-C ignored.
_AS_FROM_A_TERMINAL = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
    " os.execv(sys.argv[1], sys.argv[1:])",
)


async def _start_busy_import(
    engine: AsyncEngine, database_url: str, program: Program, path: Path
) -> tuple[asyncio.subprocess.Process, list[psutil.Process]]:
    """The import command, once its two workers are applying sales; answers it and its
    child processes (the workers, and multiprocessing's resource tracker)."""
    importing = await asyncio.create_subprocess_exec(
        *_AS_FROM_A_TERMINAL,
        *_import_command(path, program),
        *("--parallel", "2", "--batch-size", str(BATCH)),
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal gives a command
    )
    parent = psutil.Process(importing.pid)
    for _ in range(1200):  # a minute at most
        assert importing.returncode is None, "the import ended before it could be interrupted"
        workers = [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]
        if len(workers) == 2 and await _count(engine, "sales", program.id) >= 2 * BATCH:
            return importing, parent.children(recursive=True)
        await asyncio.sleep(0.05)
    importing.kill()
    raise AssertionError("the workers did not start applying sales")


async def _assert_gone(processes: list[psutil.Process], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if not _running(processes):
            return
        await asyncio.sleep(0.05)
    assert _running(processes) == []


async def _assert_whole_batches(engine: AsyncEngine, program: Program) -> int:
    """What was written is whole batches: every sale with both its lines (10% to the seller,
    5% to M0), and as many sales as full batches of 200 (each batch is one transaction)."""
    sales = await _count(engine, "sales", program.id)
    assert await _count(engine, "commission_lines", program.id) == 2 * sales
    assert sales % BATCH == 0, sales
    assert 0 < sales < SALES, sales  # applied some, not all: it really was interrupted
    return sales


async def _assert_nothing_more_is_written(engine: AsyncEngine, program: Program) -> None:
    before = await _count(engine, "sales", program.id)
    await asyncio.sleep(1.5)
    assert await _count(engine, "sales", program.id) == before


async def test_killing_the_import_ends_its_workers(
    engine: AsyncEngine,
    database_url: str,
    live_client: httpx.AsyncClient,
    live_program: Program,
    tmp_path: Path,
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    path = _events_file(tmp_path / "events.ndjson")
    importing, children = await _start_busy_import(engine, database_url, live_program, path)
    assert len(children) >= 2
    importing.kill()  # SIGKILL: nothing runs in the parent, no clean-up, no pool shutdown
    await asyncio.wait_for(importing.wait(), 10)
    await _assert_gone(children, 5)
    await _assert_nothing_more_is_written(engine, live_program)
    await _assert_whole_batches(engine, live_program)


async def test_ctrl_c_ends_the_import_and_its_workers(
    engine: AsyncEngine,
    database_url: str,
    live_client: httpx.AsyncClient,
    live_program: Program,
    tmp_path: Path,
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    path = _events_file(tmp_path / "events.ndjson")
    importing, children = await _start_busy_import(engine, database_url, live_program, path)
    os.killpg(importing.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    try:
        assert await asyncio.wait_for(importing.wait(), 5) != 0
    finally:
        if importing.returncode is None:
            importing.kill()
    await _assert_gone(children, 5)
    await _assert_nothing_more_is_written(engine, live_program)
    sales = await _assert_whole_batches(engine, live_program)

    # Run again: what was applied is a duplicate, the rest is applied; every sale once.
    again = await asyncio.create_subprocess_exec(
        *_import_command(path, live_program),
        *("--parallel", "2", "--batch-size", str(BATCH)),
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(again.communicate(), 300)
    assert again.returncode == 0, err.decode()
    report = json.loads(out)
    assert (report["applied"], report["duplicates"], report["refused"]) == (
        SALES - sales,
        BATCH + sales,
        0,
    )
    assert await _count(engine, "sales", live_program.id) == SALES
