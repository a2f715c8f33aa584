"""Plan versions: adding them, and finding the one that pays a sale."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import plans as plan_sql
from service.db.plans import PlanVersionRow
from service.domain.plan import Plan, PlanError, parse_plan, plan_to_json
from service.errors import InvalidCursor, InvalidPlan, PlanVersionNotFound


@dataclass(frozen=True, slots=True)
class PlanVersion:
    version: int
    effective_from: datetime
    created_at: datetime
    plan: Plan
    rules: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VersionPage:
    items: list[PlanVersion]
    has_more: bool


@lru_cache(maxsize=1024)
def _parsed(program_id: str, version: int, canonical: str, currency: str) -> Plan:
    """Versions never change once stored, so each is parsed once per process."""
    return parse_plan(json.loads(canonical), currency)


def plan_of(program_id: str, version: int, body_json: str, currency: str) -> Plan:
    """The parsed rules of a stored version, from its JSON text (parsed once per process)."""
    return _parsed(program_id, version, body_json, currency)


def _version(program_id: str, row: PlanVersionRow, currency: str) -> PlanVersion:
    canonical = json.dumps(row.body, sort_keys=True)
    plan = _parsed(program_id, row.version, canonical, currency)
    return PlanVersion(
        version=row.version,
        effective_from=row.effective_from,
        created_at=row.created_at,
        plan=plan,
        rules=plan_to_json(plan, currency),
    )


async def add_version(
    session: AsyncSession,
    program_id: str,
    currency: str,
    *,
    effective_from: datetime,
    rules: dict[str, Any],
) -> tuple[PlanVersion, bool]:
    """Add a plan version; (version, created). The same rules with the same start as an
    existing version answer that version (a retried PUT does not add a twin)."""
    try:
        plan = parse_plan(rules, currency)
    except PlanError as error:
        raise InvalidPlan(
            str(error),
            errors=[
                {
                    "loc": ["body", *[str(part) for part in location]],
                    "msg": message,
                    "type": "invalid_plan",
                }
                for location, message in error.errors
            ],
        ) from error
    body = plan_to_json(plan, currency)
    await plan_sql.lock_plans(session, program_id)
    same = await plan_sql.find_same(session, program_id, effective_from=effective_from, body=body)
    if same is not None:
        return _version(program_id, same, currency), False
    row = await plan_sql.insert_version(
        session, program_id, effective_from=effective_from, body=body
    )
    return _version(program_id, row, currency), True


async def in_force_for_reading(
    session: AsyncSession, program_id: str, currency: str, at: datetime
) -> PlanVersion:
    """The version in force at `at`, for a reader: none there is a 404."""
    row = await plan_sql.version_in_force(session, program_id, at)
    if row is None:
        raise PlanVersionNotFound(f"no plan version is in force at {at.isoformat()}")
    return _version(program_id, row, currency)


async def get(session: AsyncSession, program_id: str, currency: str, version: int) -> PlanVersion:
    row = await plan_sql.get_version(session, program_id, version)
    if row is None:
        raise PlanVersionNotFound(f"plan version {version} does not exist")
    return _version(program_id, row, currency)


async def versions(
    session: AsyncSession, program_id: str, currency: str, *, after_version: int, limit: int
) -> VersionPage:
    """Every version, oldest first, after `after_version` (0, or one of the versions)."""
    if after_version and await plan_sql.get_version(session, program_id, after_version) is None:
        raise InvalidCursor("the cursor is not one this list gave out")
    rows = await plan_sql.list_versions(
        session, program_id, after_version=after_version, limit=limit + 1
    )
    return VersionPage(
        items=[_version(program_id, row, currency) for row in rows[:limit]],
        has_more=len(rows) > limit,
    )


async def in_force(
    session: AsyncSession, program_id: str, currency: str, at: datetime
) -> PlanVersion | None:
    """The version in force at `at`, if any."""
    row = await plan_sql.version_in_force(session, program_id, at)
    return None if row is None else _version(program_id, row, currency)
