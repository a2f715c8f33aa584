"""Bulk import of newline-delimited events, with the webhook's exactly-once rules."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db import failures, statistics
from service.db import plans as plan_sql
from service.db import programs as program_sql
from service.errors import ProgramNotFound, ServiceError
from service.intake.events import EventResult, apply_events  # the webhook's own code path
from service.intake.payloads import parse_json
from service.services.programs import Principal

MAX_REFUSALS_SHOWN = 20
DEADLOCK_RETRIES = 5
FIRST_STATISTICS_AT = 1000
"""The tables' statistics are refreshed once this many events are applied, then each time
the applied events double: about seventeen times for a hundred million events, and once more
at the end, so that what the import added last is known to the planner too (a month closed
right after an import is planned on it). The import goes on meanwhile; a refresh due while
the one before still runs waits for it."""


@dataclass
class ImportReport:
    """What an import did: applied now, applied before (duplicates), refused and why."""

    applied: int = 0
    duplicates: int = 0
    refused: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_refusals: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "refusals_by_code": dict(sorted(self.reasons.items())),
            "first_refusals": self.first_refusals,
        }


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str
    event: Any  # the parsed JSON, or the ServiceError refusing a line that is not JSON


def _batches(
    stream: IO[bytes], size: int, progress: Callable[[int], None]
) -> Iterator[list[_Line]]:
    """Read the file a line at a time (constant memory), `size` events to a batch."""
    batch: list[_Line] = []
    for number, raw in enumerate(stream, start=1):
        progress(len(raw))
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        try:
            event: Any = parse_json(raw)
        except ServiceError as refusal:
            event = refusal
        batch.append(_Line(number, text, event))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_events(
    sessions: async_sessionmaker[AsyncSession],
    program_id: str,
    path: Path,
    *,
    batch_size: int = 500,
    parallel: int = 2,
    database_url: str | None = None,
    progress: Callable[[int], None] = lambda _: None,
    refused_out: IO[str] | None = None,
) -> ImportReport:
    """Apply every event of the file, one transaction per batch, refreshing the planner's
    statistics as the tables grow (see `FIRST_STATISTICS_AT`).

    Each event goes through the same code as `POST /v1/events`, so an event already applied
    (by the webhook, or by an earlier run that was interrupted) is counted as a duplicate and
    not applied again: running the import again resumes it. Refused events are counted by
    code and, with `refused_out`, written there as they were read, to fix and re-import.

    Up to `parallel` batches are applied at once when they commute (see `_Batch.commutes`),
    as concurrent webhook deliveries are: with `database_url`, each by one of `parallel`
    worker processes (calculating sales takes a core), otherwise as tasks of this process;
    a batch that PostgreSQL rolls back to break a deadlock is applied again. Any other
    batch waits for those before it, so every event sees the ones before it in the file.
    Outcomes are counted, and refusals written, in file order.
    """
    async with sessions() as session:
        program = await program_sql.get_program(session, program_id)
    if program is None:
        raise ProgramNotFound(f"program {program_id!r} does not exist")
    caller = Principal(program=program, key_id="import", scopes=frozenset({"events:write"}))
    report = ImportReport()
    statistics_at = FIRST_STATISTICS_AT
    refreshed_at = 0  # events applied when the latest refresh began
    refreshing: asyncio.Future[None] | None = None  # beside the batches, which it does not block
    in_flight: deque[tuple[_Batch, asyncio.Future[list[EventResult]]]] = deque()

    workers = None
    if parallel > 1 and database_url is not None:
        workers = ProcessPoolExecutor(
            parallel,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(database_url, program_id, os.getpid()),
        )
    finished = False

    def start(batch: _Batch) -> asyncio.Future[list[EventResult]]:
        if workers is None:
            events = [line.event for line in batch.parsed]
            return asyncio.ensure_future(_apply_batch(sessions, caller, events))
        texts = [line.text for line in batch.parsed]
        return asyncio.wrap_future(workers.submit(_apply_in_worker, texts))

    async def settle_oldest() -> None:
        batch, task = in_flight.popleft()
        _count(report, batch, await task, refused_out)

    async def refresh_statistics() -> None:
        async with sessions() as session, session.begin():
            await statistics.refresh(session)

    async def sales_commute() -> bool:
        async with sessions() as session:
            return not await plan_sql.has_activity_rule(session, program_id)

    try:
        with path.open("rb") as stream:
            for lines in _batches(stream, batch_size, progress):
                batch = _Batch.of(lines)
                overlap = (
                    parallel > 1
                    and bool(in_flight)
                    and all(batch.commutes(other) for other, _ in in_flight)
                    and await sales_commute()
                )
                if not overlap:
                    while in_flight:
                        await settle_oldest()
                if report.applied >= statistics_at:
                    if refreshing is not None:  # one at a time; the one before seldom runs on
                        await refreshing
                    refreshing = asyncio.ensure_future(refresh_statistics())
                    refreshed_at = report.applied
                    statistics_at = 2 * report.applied
                while len(in_flight) >= parallel:
                    await settle_oldest()
                in_flight.append((batch, start(batch)))
            while in_flight:
                await settle_oldest()
            if refreshing is not None:
                await refreshing
            if report.applied >= FIRST_STATISTICS_AT and report.applied > refreshed_at:
                refreshing = asyncio.ensure_future(refresh_statistics())
                await refreshing
        finished = True
    finally:  # interrupted, or a batch failed: roll back what is still in flight
        unfinished: list[asyncio.Future[Any]] = [future for _, future in in_flight]
        if refreshing is not None:
            unfinished.append(refreshing)
        for future in unfinished:
            future.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        if workers is not None:
            if finished:
                workers.shutdown(cancel_futures=True)
            else:
                _stop_workers(workers)
    return report


def _stop_workers(workers: ProcessPoolExecutor) -> None:
    """End the workers now, batch in hand (Ctrl-C, or a batch failed): each batch's
    transaction dies with its worker's connection, and the next run resumes from there."""
    processes = list(workers._processes.values())  # no public way to end them before 3.14
    workers.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)


async def _apply_batch(
    sessions: async_sessionmaker[AsyncSession], caller: Principal, events: list[Any]
) -> list[EventResult]:
    """Apply a batch in one transaction, again if PostgreSQL chose it to break a deadlock:
    two batches at once can lock the same sellers' volume rows in opposite orders (a refund
    is applied alone, after the sales before it), and one of them is rolled back whole."""
    for attempt in range(1, DEADLOCK_RETRIES + 1):
        try:
            async with sessions() as session, session.begin():
                return await apply_events(session, caller, events, with_bodies=False)
        except DBAPIError as error:
            if not failures.retryable(error) or attempt == DEADLOCK_RETRIES:
                raise
    raise AssertionError("unreachable")


_worker: dict[str, Any] = {}
"""In a worker process of a parallel import: its event loop, sessions and caller."""


def _start_worker(database_url: str, program_id: str, parent: int) -> None:
    from service.db.engine import make_engine
    from service.runtime import settle_heap

    _end_with_parent(parent)

    loop = asyncio.new_event_loop()
    sessions = async_sessionmaker(
        make_engine(database_url, pool_size=1), expire_on_commit=False, autoflush=False
    )

    async def program() -> Any:
        async with sessions() as session:
            return await program_sql.get_program(session, program_id)

    caller = Principal(
        program=loop.run_until_complete(program()),
        key_id="import",
        scopes=frozenset({"events:write"}),
    )
    _worker.update(loop=loop, sessions=sessions, caller=caller)
    settle_heap()


PARENT_CHECK_INTERVAL = 1.0
"""Seconds between two looks, in a worker, at whether its parent is still there."""


def _end_with_parent(parent: int) -> None:
    """A worker ends when the import that started it ends, however it ends: killed (even by
    SIGKILL, which runs no clean-up in the parent) or interrupted. Left running, it would go
    on writing its batch and hold a connection and its memory.

    On Linux the kernel sends the worker SIGKILL when its parent dies (PR_SET_PDEATHSIG);
    elsewhere, and as a fallback, a thread looks at the parent every second. A worker
    ignores Ctrl-C (SIGINT reaches the whole process group): the parent then ends the
    workers itself, in `_stop_workers`. Either way the batch's transaction dies with the
    worker's connection and PostgreSQL rolls it back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _apply_in_worker(texts: list[str]) -> list[EventResult]:
    events = [parse_json(text) for text in texts]
    loop: asyncio.AbstractEventLoop = _worker["loop"]
    return loop.run_until_complete(_apply_batch(_worker["sessions"], _worker["caller"], events))


_COMMUTING = frozenset({"sale.completed", "sale.refunded"})


@dataclass(frozen=True, slots=True)
class _Batch:
    lines: list[_Line]
    parsed: list[_Line]  # the lines that are JSON, in the order they are applied
    money_only: bool  # every JSON line claims to be a sale or a refund
    names: frozenset[tuple[str, str]]  # the event, sale and refund ids it names

    @classmethod
    def of(cls, lines: list[_Line]) -> _Batch:
        """The batch of these lines. One of only sales and refunds is applied sales first
        (they commute, as in `commutes`) unless a refund comes before the sale it names:
        then all its sales' volume rows are locked by one statement, in one order, and two
        such batches at once seldom deadlock."""
        parsed = [line for line in lines if not isinstance(line.event, ServiceError)]
        names: set[tuple[str, str]] = set()
        sales: list[_Line] = []
        refunds: list[_Line] = []
        refunded: set[str] = set()
        keep_order = False
        for line in parsed:
            event = line.event
            kind = event.get("type") if isinstance(event, dict) else None
            if kind not in _COMMUTING:
                return cls(lines, parsed, False, frozenset())
            data = event.get("data")
            data = data if isinstance(data, dict) else {}
            names.add(("event", str(event.get("id"))))
            if kind == "sale.completed":
                sale_id = str(data.get("id"))
                keep_order |= sale_id in refunded
                names.add(("sale", sale_id))
                sales.append(line)
            else:
                refunded.add(str(data.get("sale_id")))
                names.add(("sale", str(data.get("sale_id"))))
                names.add(("refund", str(data.get("id"))))
                refunds.append(line)
        ordered = parsed if keep_order else [*sales, *refunds]
        return cls(lines, ordered, True, frozenset(names))

    def commutes(self, other: _Batch) -> bool:
        """Whether the two batches may be applied in either order, or at once, with the same
        outcome: both only sales and refunds, naming no event, sale or refund in common, in
        a plan without an activity rule (checked by the caller). A sale then reads only the
        tree, the plan and its own id, which no sale or refund changes; a refund reads only
        its sale, its lines and refunds (named here); what they share, the sellers' period
        volumes, they only add to. A line that is not a valid event is refused whatever the
        order."""
        return self.money_only and other.money_only and not (self.names & other.names)


def _count(
    report: ImportReport,
    batch: _Batch,
    results: list[EventResult],
    refused_out: IO[str] | None,
) -> None:
    outcome = dict(zip((line.number for line in batch.parsed), results, strict=True))
    for line in batch.lines:
        if isinstance(line.event, ServiceError):  # not JSON: refused before it was applied
            _refuse(report, line, None, line.event.code, line.event.detail, refused_out)
            continue
        result = outcome[line.number]
        if result.code is not None:
            _refuse(report, line, result.id, result.code, result.detail or "", refused_out)
        elif result.duplicate:
            report.duplicates += 1
        else:
            report.applied += 1


def _refuse(
    report: ImportReport,
    line: _Line,
    event_id: str | None,
    code: str,
    detail: str,
    refused_out: IO[str] | None,
) -> None:
    report.refused += 1
    report.reasons[code] += 1
    if len(report.first_refusals) < MAX_REFUSALS_SHOWN:
        report.first_refusals.append(
            {"line": line.number, "id": event_id, "code": code, "detail": detail}
        )
    if refused_out is not None:
        refused_out.write(line.text + "\n")
