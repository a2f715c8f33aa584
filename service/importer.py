"""Bulk import of newline-delimited events, with the webhook's exactly-once rules."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.api.events import apply_events  # the webhook's own code path
from service.db import programs as program_sql
from service.db import statistics
from service.errors import ProgramNotFound
from service.services.programs import Principal

MAX_REFUSALS_SHOWN = 20
FIRST_STATISTICS_AT = 1000
"""The tables' statistics are refreshed once this many events are applied, then each time
the applied events double: about seventeen times for a hundred million events."""


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
    event: Any


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
            event: Any = json.loads(text)
        except ValueError:
            event = _MALFORMED
        batch.append(_Line(number, text, event))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_MALFORMED = object()


async def import_events(
    sessions: async_sessionmaker[AsyncSession],
    program_id: str,
    path: Path,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] = lambda _: None,
    refused_out: IO[str] | None = None,
) -> ImportReport:
    """Apply every event of the file, one transaction per batch, refreshing the planner's
    statistics as the tables grow (see `FIRST_STATISTICS_AT`).

    Each event goes through the same code as `POST /v1/events`, so an event already applied
    (by the webhook, or by an earlier run that was interrupted) is counted as a duplicate and
    not applied again: running the import again resumes it. Refused events are counted by
    code and, with `refused_out`, written there as they were read, to fix and re-import.
    """
    async with sessions() as session:
        program = await program_sql.get_program(session, program_id)
    if program is None:
        raise ProgramNotFound(f"program {program_id!r} does not exist")
    caller = Principal(program=program, key_id="import", scopes=frozenset({"events:write"}))
    report = ImportReport()
    statistics_at = FIRST_STATISTICS_AT
    with path.open("rb") as stream:
        for batch in _batches(stream, batch_size, progress):
            if report.applied >= statistics_at:
                async with sessions() as session, session.begin():
                    await statistics.refresh(session)
                statistics_at = 2 * report.applied
            parsed = [line for line in batch if line.event is not _MALFORMED]
            async with sessions() as session, session.begin():
                results = await apply_events(
                    session, caller, [line.event for line in parsed], with_bodies=False
                )
            outcome = dict(zip((line.number for line in parsed), results, strict=True))
            for line in batch:
                result = outcome.get(line.number)
                if result is None:
                    _refuse(
                        report, line, None, "malformed_json", "the line is not JSON", refused_out
                    )
                elif result.code is not None:
                    _refuse(report, line, result.id, result.code, result.detail or "", refused_out)
                elif result.duplicate:
                    report.duplicates += 1
                else:
                    report.applied += 1
    return report


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
