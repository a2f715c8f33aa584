"""Planner statistics of the tables a bulk load fills."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_FILLED_BY_EVENTS = (
    "members",
    "sales",
    "refunds",
    "commission_lines",
    "member_period_volumes",
    "applied_requests",
)


async def refresh(session: AsyncSession) -> None:
    """ANALYZE the tables that events fill. Besides better estimates, this replans the
    statements cached on every connection, among them the foreign-key checks, which are
    planned once per connection: one planned while a table was nearly empty scans it whole,
    and autovacuum (once a minute at best) can lag a fast load by far more than that. A table
    that autovacuum holds is skipped (autovacuum analyses it), rather than waited for."""
    await session.execute(text(f"ANALYZE (SKIP_LOCKED) {', '.join(_FILLED_BY_EVENTS)}"))
