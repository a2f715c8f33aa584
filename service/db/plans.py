"""SQL for plan versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import plan_versions


@dataclass(frozen=True, slots=True)
class PlanVersionRow:
    version: int
    effective_from: datetime
    body: dict[str, Any]
    created_at: datetime


_COLUMNS = (
    plan_versions.c.version,
    plan_versions.c.effective_from,
    plan_versions.c.body,
    plan_versions.c.created_at,
)


def _row(mapping: Any) -> PlanVersionRow:
    return PlanVersionRow(**{column.name: mapping[column.name] for column in _COLUMNS})


async def lock_plans(session: AsyncSession, program_id: str) -> None:
    """Serialise plan changes within a program: version numbers are handed out in order."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('plans:' || :program_id, 0))"),
        {"program_id": program_id},
    )


async def find_same(
    session: AsyncSession, program_id: str, *, effective_from: datetime, body: dict[str, Any]
) -> PlanVersionRow | None:
    """The newest version with this start and these rules (a retried PUT), if any."""
    row = (
        await session.execute(
            select(*_COLUMNS)
            .where(
                plan_versions.c.program_id == program_id,
                plan_versions.c.effective_from == effective_from,
                plan_versions.c.body == body,
            )
            .order_by(plan_versions.c.version.desc())
            .limit(1)
        )
    ).one_or_none()
    return _row(row._mapping) if row is not None else None


async def insert_version(
    session: AsyncSession, program_id: str, *, effective_from: datetime, body: dict[str, Any]
) -> PlanVersionRow:
    row = (
        await session.execute(
            text(
                """
                INSERT INTO plan_versions (program_id, version, effective_from, body)
                SELECT :program_id, COALESCE(max(version), 0) + 1, :effective_from,
                       CAST(:body AS jsonb)
                FROM plan_versions WHERE program_id = :program_id
                RETURNING version, effective_from, body, created_at
                """
            ),
            {
                "program_id": program_id,
                "effective_from": effective_from,
                "body": _json(body),
            },
        )
    ).one()
    return _row(row._mapping)


async def version_in_force(
    session: AsyncSession, program_id: str, at: datetime
) -> PlanVersionRow | None:
    """The version that pays what happens at `at`: the latest start at or before it; of two
    versions with the same start, the one added last."""
    row = (
        await session.execute(
            select(*_COLUMNS)
            .where(plan_versions.c.program_id == program_id, plan_versions.c.effective_from <= at)
            .order_by(plan_versions.c.effective_from.desc(), plan_versions.c.version.desc())
            .limit(1)
        )
    ).one_or_none()
    return _row(row._mapping) if row is not None else None


async def get_version(
    session: AsyncSession, program_id: str, version: int
) -> PlanVersionRow | None:
    row = (
        await session.execute(
            select(*_COLUMNS).where(
                plan_versions.c.program_id == program_id, plan_versions.c.version == version
            )
        )
    ).one_or_none()
    return _row(row._mapping) if row is not None else None


async def list_versions(
    session: AsyncSession, program_id: str, *, after_version: int, limit: int
) -> list[PlanVersionRow]:
    rows = await session.execute(
        select(*_COLUMNS)
        .where(plan_versions.c.program_id == program_id, plan_versions.c.version > after_version)
        .order_by(plan_versions.c.version)
        .limit(limit)
    )
    return [_row(r._mapping) for r in rows]


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


async def has_activity_rule(session: AsyncSession, program_id: str) -> bool:
    """Whether any version of the program's plan has an activity rule: then a sale's
    calculation reads the sales before it, and sales no longer commute."""
    found = await session.scalar(
        select(plan_versions.c.version)
        .where(
            plan_versions.c.program_id == program_id,
            plan_versions.c.body["activity"].is_not(None),
            func.jsonb_typeof(plan_versions.c.body["activity"]) != "null",
        )
        .limit(1)
    )
    return found is not None
