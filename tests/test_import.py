"""Bulk import of NDJSON events: exactly once, resumable, refusals counted with reasons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service import importer
from service.db import statistics
from service.importer import import_events
from service.intake import events as intake_events
from tests.api.flows import put_plan
from tests.conftest import Program, make_program

PLAN = {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}}


def _events(members: int) -> list[dict[str, Any]]:
    """A root, `members - 1` members each under the previous one, and one sale each."""
    events: list[dict[str, Any]] = []
    for i in range(members):
        events.append(
            {
                "id": f"enrol-{i}",
                "type": "member.enrolled",
                "occurred_at": "2026-10-01T00:00:00Z",
                "data": {
                    "id": f"M{i}",
                    "sponsor_id": f"M{i - 1}" if i else None,
                    "enrolled_at": "2026-10-01T00:00:00Z",
                },
            }
        )
        events.append(
            {
                "id": f"sale-{i}",
                "type": "sale.completed",
                "occurred_at": "2026-10-02T00:00:00Z",
                "data": {
                    "id": f"O-{i}",
                    "member_id": f"M{i}",
                    "amount": "10.00",
                    "currency": "USD",
                    "occurred_at": "2026-10-02T00:00:00Z",
                },
            }
        )
    return events


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


async def _scalar(engine: AsyncEngine, sql: str, program_id: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), {"p": program_id})).scalar_one()


async def test_import_applies_counts_and_resumes(
    engine: AsyncEngine,
    live_client: httpx.AsyncClient,
    live_sessions: async_sessionmaker[AsyncSession],
    live_program: Program,
    tmp_path: Path,
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    events = [json.dumps(e) for e in _events(60)]
    # An interrupted first run: only the first 50 lines made it.
    partial = _write(tmp_path / "partial.ndjson", events[:50])
    report = await import_events(live_sessions, live_program.id, partial, batch_size=7)
    assert report.as_json() == {
        "applied": 50,
        "duplicates": 0,
        "refused": 0,
        "refusals_by_code": {},
        "first_refusals": [],
    }
    # The whole file, with a malformed line, a sale of a member never enrolled, and a
    # reused id with another body: the first 50 are duplicates, nothing is applied twice.
    broken = [
        "{not json",
        json.dumps(
            {
                "id": "sale-x",
                "type": "sale.completed",
                "occurred_at": "2026-10-02T00:00:00Z",
                "data": {
                    "id": "O-x",
                    "member_id": "GHOST",
                    "amount": "1.00",
                    "currency": "USD",
                    "occurred_at": "2026-10-02T00:00:00Z",
                },
            }
        ),
        json.dumps({**json.loads(events[1]), "occurred_at": "2026-10-03T00:00:00Z"}),
    ]
    full = _write(tmp_path / "full.ndjson", [*events, "", *broken])
    refused_file = tmp_path / "refused.ndjson"
    with refused_file.open("w") as refused_out:
        report = await import_events(
            live_sessions, live_program.id, full, batch_size=500, refused_out=refused_out
        )
    assert report.applied == 70
    assert report.duplicates == 50
    assert report.refused == 3
    assert dict(report.reasons) == {
        "malformed_json": 1,
        "unknown_member": 1,
        "event_conflict": 1,
    }
    assert [(r["line"], r["code"]) for r in report.first_refusals] == [
        (122, "malformed_json"),
        (123, "unknown_member"),
        (124, "event_conflict"),
    ]
    assert refused_file.read_text().splitlines() == broken
    # 60 sales of 10.00: 60 x 1.00 personal + 59 x 0.50 override (M0 sponsors nobody's...
    # every member but the root has a sponsor) = 60.00 + 29.50 = 89.50.
    total = await _scalar(
        engine, "SELECT sum(amount) FROM commission_lines WHERE program_id = :p", live_program.id
    )
    assert str(total) == "89.5000"
    assert (
        await _scalar(engine, "SELECT count(*) FROM sales WHERE program_id = :p", live_program.id)
        == 60
    )


@pytest.mark.slow
def test_import_command(
    database_url: str, live_program: Program, tmp_path: Path, live_client: httpx.AsyncClient
) -> None:
    path = _write(tmp_path / "events.ndjson", [json.dumps(e) for e in _events(3)[:1]])
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "service", "import", str(path), "--program", live_program.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["applied"] == 1
    again = subprocess.run(
        [sys.executable, "-m", "service", "import", str(path), "--program", live_program.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert json.loads(again.stdout)["duplicates"] == 1
    missing = subprocess.run(
        [sys.executable, "-m", "service", "import", str(path), "--program", "no-such-program"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2
    where = f"the database {make_url(database_url).render_as_string()} (DATABASE_URL)"
    using, refusal = missing.stderr.splitlines()
    assert using == f"commissions: using {where}"
    assert json.loads(refusal) == {
        "error": "program_not_found",
        "detail": f"program 'no-such-program' does not exist in {where}",
    }


async def test_import_refreshes_statistics_as_the_tables_double(
    engine: AsyncEngine,
    live_client: httpx.AsyncClient,
    live_sessions: async_sessionmaker[AsyncSession],
    live_program: Program,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await put_plan(live_client, live_program, categories=PLAN)
    path = _write(tmp_path / "events.ndjson", [json.dumps(e) for e in _events(60)])
    refreshed_after: list[int] = []
    refresh = statistics.refresh

    async def counted(session: AsyncSession) -> None:
        refreshed_after.append(len(refreshed_after))
        await refresh(session)

    monkeypatch.setattr(importer, "FIRST_STATISTICS_AT", 10)
    monkeypatch.setattr(statistics, "refresh", counted)
    report = await import_events(live_sessions, live_program.id, path, batch_size=10)
    assert report.applied == 120
    # batches of 10: refreshed once 10 are applied, then at 20, 40 and 80, and at the end
    # (120: the next would only be due at 160)
    assert len(refreshed_after) == 5
    async with engine.connect() as connection:
        analyzed = (
            await connection.execute(
                text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'members'")
            )
        ).scalar_one()
    assert analyzed is not None


def _sales_and_refunds() -> list[dict[str, Any]]:
    """31 members in a binary tree, then 240 sales over 20 days with a refund among them,
    a refund sent just before its sale, a sale retried under its own event id, a sale id
    reused with another body, and a sale of a member never enrolled."""

    def event(event_id: str, kind: str, at: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"id": event_id, "type": kind, "occurred_at": at, "data": data}

    events = [
        event(
            f"enrol-{i}",
            "member.enrolled",
            "2026-01-01T00:00:00Z",
            {
                "id": f"M{i}",
                "sponsor_id": f"M{(i - 1) // 2}" if i else None,
                "enrolled_at": "2026-01-01T00:00:00Z",
            },
        )
        for i in range(31)
    ]
    for n in range(240):
        at = f"2026-03-{1 + n // 12:02d}T{n % 12:02d}:00:00Z"
        seller = "GHOST" if n == 200 else f"M{(n * 7) % 31}"
        sale = {
            "id": f"O-{n}",
            "member_id": seller,
            "amount": f"{10 + n % 9}.50",
            "currency": "USD",
            "occurred_at": at,
        }
        events.append(event(f"sale-{n}", "sale.completed", at, sale))
        if n == 90:
            refund = {"sale_id": "O-40", "id": "R-40", "amount": "5.00", "occurred_at": at}
            events.append(event("refund-40", "sale.refunded", at, refund))
        if n == 120:  # refused: in file order, its sale comes next, in the same batch
            refund = {"sale_id": "O-121", "id": "R-121", "amount": "1.00", "occurred_at": at}
            events.append(event("refund-121", "sale.refunded", at, refund))
        if n == 150:
            events.append(events[40 + 31])  # a retry of sale-40
            events.append(event("sale-again", "sale.completed", at, {**sale, "id": "O-3"}))
    return events


async def _ledger(engine: AsyncEngine, program_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        lines = await connection.execute(
            text(
                "SELECT sale_id, earner_id, kind, level, amount FROM commission_lines "
                "WHERE program_id = :p ORDER BY sale_id, kind, level, earner_id"
            ),
            {"p": program_id},
        )
        volumes = await connection.execute(
            text(
                "SELECT member_id, period, volume, sales FROM member_period_volumes "
                "WHERE program_id = :p ORDER BY member_id, period"
            ),
            {"p": program_id},
        )
        return {"lines": [tuple(r) for r in lines], "volumes": [tuple(r) for r in volumes]}


class _Deadlock(Exception):
    sqlstate = "40P01"


@pytest.mark.parametrize("activity", [False, True], ids=["plain", "activity-rule"])
async def test_parallel_import_equals_one_batch_at_a_time(
    engine: AsyncEngine,
    live_client: httpx.AsyncClient,
    live_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    activity: bool,
) -> None:
    rules: dict[str, Any] = {
        "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}
    }
    if activity:
        rules["activity"] = {"min_personal_volume": "30.00", "window_days": 3}
    path = _write(tmp_path / "events.ndjson", [json.dumps(e) for e in _sales_and_refunds()])
    at_once = 0
    most_at_once = 0
    calls = 0
    apply_events = intake_events.apply_events

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal at_once, most_at_once, calls
        at_once += 1
        calls += 1
        most_at_once = max(most_at_once, at_once)
        try:
            results = await apply_events(*args, **kwargs)
            if calls == 12:  # PostgreSQL picks this batch, written but not committed, to fail
                raise DBAPIError("COMMIT", None, _Deadlock("deadlock detected"))
            return results
        finally:
            at_once -= 1

    monkeypatch.setattr(importer, "apply_events", counted)
    outcomes = {}
    for parallel in (1, 3):
        program = await make_program(live_sessions, f"live-{uuid.uuid4().hex[:12]}")
        await put_plan(live_client, program, **rules)
        most_at_once = calls = 0
        report = await import_events(
            live_sessions, program.id, path, batch_size=9, parallel=parallel
        )
        outcomes[parallel] = (report.as_json(), await _ledger(engine, program.id))
        assert most_at_once == (1 if parallel == 1 or activity else 3)
    report_json, ledger = outcomes[1]
    assert outcomes[3] == outcomes[1]
    assert report_json["applied"] == 31 + 240 - 1 + 1
    assert report_json["duplicates"] == 1
    assert report_json["refusals_by_code"] == {
        "sale_conflict": 1,
        "unknown_member": 1,
        "unknown_sale": 1,
    }
    assert len(ledger["volumes"]) == 31


@pytest.mark.slow
async def test_import_by_worker_processes_equals_one_batch_at_a_time(
    engine: AsyncEngine,
    database_url: str,
    live_client: httpx.AsyncClient,
    live_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    rules: dict[str, Any] = {
        "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03"]}}
    }
    path = _write(tmp_path / "events.ndjson", [json.dumps(e) for e in _sales_and_refunds()])
    outcomes = []
    for url in (None, database_url):
        program = await make_program(live_sessions, f"live-{uuid.uuid4().hex[:12]}")
        await put_plan(live_client, program, **rules)
        report = await import_events(
            live_sessions, program.id, path, batch_size=9, parallel=2, database_url=url
        )
        outcomes.append((report.as_json(), await _ledger(engine, program.id)))
    assert outcomes[1] == outcomes[0]
    assert outcomes[1][0]["applied"] == 271


async def test_import_refuses_an_enrolment_before_its_sponsor(
    engine: AsyncEngine,
    live_sessions: async_sessionmaker[AsyncSession],
    live_program: Program,
    tmp_path: Path,
) -> None:
    def enrolled(event_id: str, member: str, sponsor: str | None, at: str) -> str:
        data = {"id": member, "sponsor_id": sponsor, "enrolled_at": at}
        return json.dumps(
            {"id": event_id, "type": "member.enrolled", "occurred_at": at, "data": data}
        )

    path = _write(
        tmp_path / "events.ndjson",
        [
            enrolled("e1", "ROOT", None, "2026-10-02T00:00:00Z"),
            enrolled("e2", "EARLY", "ROOT", "2026-10-01T00:00:00Z"),
            enrolled("e3", "SAME", "ROOT", "2026-10-02T00:00:00Z"),
        ],
    )
    report = await import_events(live_sessions, live_program.id, path, batch_size=10)
    assert report.applied == 2
    assert dict(report.reasons) == {"enrolled_before_sponsor": 1}
    assert [(r["line"], r["code"]) for r in report.first_refusals] == [
        (2, "enrolled_before_sponsor")
    ]
    members = await _scalar(
        engine,
        "SELECT string_agg(member_id, ',' ORDER BY member_id) FROM members WHERE program_id = :p",
        live_program.id,
    )
    assert members == "ROOT,SAME"
