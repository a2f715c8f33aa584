"""SQL for periods: the program's oldest open period, its lock, and closes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.sales import HOLD_LABELS, lock_labels

_OPEN_FROM = text("SELECT open_from FROM programs WHERE program_id = :program_id")


async def hold_open_from(session: AsyncSession, program_id: str) -> str | None:
    """The program's oldest open period (None: no period closed), read after taking the
    program's lock shared, as every write that books into a period holds it until it
    commits: a close, which takes it alone, can then neither be in progress nor commit
    before this transaction ends. Two statements: the read's snapshot must begin after
    the lock is held."""
    await session.execute(HOLD_LABELS, {"program_id": program_id})
    return (await session.execute(_OPEN_FROM, {"program_id": program_id})).scalar_one_or_none()


async def lock_for_close(session: AsyncSession, program_id: str) -> str | None:
    """Take the program's lock alone (closes of a program run one at a time, and no sale or
    refund books into a period meanwhile) and answer the oldest open period as it is then."""
    await lock_labels(session, program_id)
    return (await session.execute(_OPEN_FROM, {"program_id": program_id})).scalar_one_or_none()
