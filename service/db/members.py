"""SQL for members and the sponsor genealogy (recursive CTEs over the adjacency list)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import member_moves, members

_COLUMNS = (
    members.c.member_id,
    members.c.sponsor_id,
    members.c.enrolled_sponsor_id,
    members.c.enrolled_at,
    members.c.status,
    members.c.name,
    members.c.rank,
    members.c.created_at,
    members.c.updated_at,
)


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_id: str
    sponsor_id: str | None
    enrolled_sponsor_id: str | None
    enrolled_at: datetime
    status: str
    name: str | None
    rank: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RelativeRow:
    """A member seen from another one: `level` is the distance between the two."""

    member: MemberRow
    level: int


def _member(mapping: Any) -> MemberRow:
    return MemberRow(**{column.name: mapping[column.name] for column in _COLUMNS})


async def get_member(
    session: AsyncSession, program_id: str, member_id: str, *, for_update: bool = False
) -> MemberRow | None:
    statement = select(*_COLUMNS).where(
        members.c.program_id == program_id, members.c.member_id == member_id
    )
    if for_update:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).one_or_none()
    return _member(row._mapping) if row is not None else None


async def insert_member(
    session: AsyncSession,
    *,
    program_id: str,
    member_id: str,
    sponsor_id: str | None,
    enrolled_at: datetime,
    name: str | None,
    status: str,
) -> MemberRow | None:
    """Insert the member; None when the id is taken (the caller compares)."""
    statement = text(
        """
        INSERT INTO members
            (program_id, member_id, sponsor_id, enrolled_sponsor_id, enrolled_at, name, status)
        VALUES (:program_id, :member_id, :sponsor_id, :sponsor_id, :enrolled_at, :name, :status)
        ON CONFLICT (program_id, member_id) DO NOTHING
        RETURNING member_id, sponsor_id, enrolled_sponsor_id, enrolled_at, status, name, rank,
                  created_at, updated_at
        """
    )
    row = (
        await session.execute(
            statement,
            {
                "program_id": program_id,
                "member_id": member_id,
                "sponsor_id": sponsor_id,
                "enrolled_at": enrolled_at,
                "name": name,
                "status": status,
            },
        )
    ).one_or_none()
    return _member(row._mapping) if row is not None else None


async def update_member(
    session: AsyncSession, program_id: str, member_id: str, changes: dict[str, Any]
) -> MemberRow:
    row = (
        await session.execute(
            update(members)
            .where(members.c.program_id == program_id, members.c.member_id == member_id)
            .values(**changes, updated_at=func.now())
            .returning(*_COLUMNS)
        )
    ).one()
    return _member(row._mapping)


async def lock_genealogy(session: AsyncSession, program_id: str) -> None:
    """Serialise moves within a program, so two concurrent moves cannot close a cycle."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('genealogy:' || :program_id, 0))"),
        {"program_id": program_id},
    )


# The sponsor of `candidate`, its sponsor, ... : is `member_id` among them?
_IS_ANCESTOR = text(
    """
    WITH RECURSIVE chain(member_id, sponsor_id) AS (
        SELECT m.member_id, m.sponsor_id
        FROM members m
        WHERE m.program_id = :program_id AND m.member_id = :candidate
      UNION ALL
        SELECT s.member_id, s.sponsor_id
        FROM chain c
        JOIN members s ON s.program_id = :program_id AND s.member_id = c.sponsor_id
    )
    SELECT EXISTS (SELECT 1 FROM chain WHERE member_id = :member_id)
    """
)


async def is_in_upline_or_self(
    session: AsyncSession, program_id: str, *, member_id: str, candidate: str
) -> bool:
    """True when `member_id` is `candidate` or one of `candidate`'s ancestors."""
    result = await session.execute(
        _IS_ANCESTOR, {"program_id": program_id, "member_id": member_id, "candidate": candidate}
    )
    return bool(result.scalar_one())


async def set_sponsor(
    session: AsyncSession, program_id: str, member_id: str, sponsor_id: str | None
) -> MemberRow:
    return await update_member(session, program_id, member_id, {"sponsor_id": sponsor_id})


async def record_move(
    session: AsyncSession,
    *,
    program_id: str,
    member_id: str,
    from_sponsor_id: str | None,
    to_sponsor_id: str | None,
) -> datetime:
    moved_at: datetime = (
        await session.execute(
            insert(member_moves)
            .values(
                program_id=program_id,
                member_id=member_id,
                from_sponsor_id=from_sponsor_id,
                to_sponsor_id=to_sponsor_id,
            )
            .returning(member_moves.c.moved_at)
        )
    ).scalar_one()
    return moved_at


# Walks up from `start`: level 1 is start's sponsor. Stops after :levels levels.
_UPLINE = text(
    """
    WITH RECURSIVE up(member_id, sponsor_id, enrolled_sponsor_id, enrolled_at, status, name,
                      rank, created_at, updated_at, level) AS (
        SELECT s.member_id, s.sponsor_id, s.enrolled_sponsor_id, s.enrolled_at, s.status,
               s.name, s.rank, s.created_at, s.updated_at, 1
        FROM members m
        JOIN members s ON s.program_id = m.program_id AND s.member_id = m.sponsor_id
        WHERE m.program_id = :program_id AND m.member_id = :start
      UNION ALL
        SELECT s.member_id, s.sponsor_id, s.enrolled_sponsor_id, s.enrolled_at, s.status,
               s.name, s.rank, s.created_at, s.updated_at, up.level + 1
        FROM up
        JOIN members s ON s.program_id = :program_id AND s.member_id = up.sponsor_id
        WHERE up.level < :levels
    )
    SELECT * FROM up ORDER BY level
    """
)


async def upline_of(
    session: AsyncSession, program_id: str, start: str, *, levels: int
) -> list[RelativeRow]:
    """The sponsor chain of `start`, nearest first, at most `levels` long."""
    rows = await session.execute(
        _UPLINE, {"program_id": program_id, "start": start, "levels": levels}
    )
    return [RelativeRow(member=_member(r._mapping), level=r.level) for r in rows]


# Everyone below :root down to :max_depth, in (level, member_id) order, after the cursor.
_DOWNLINE_PAGE = text(
    """
    WITH RECURSIVE down(member_id, level) AS (
        SELECT c.member_id, 1
        FROM members c
        WHERE c.program_id = :program_id AND c.sponsor_id = :root
      UNION ALL
        SELECT c.member_id, d.level + 1
        FROM down d
        JOIN members c ON c.program_id = :program_id AND c.sponsor_id = d.member_id
        WHERE d.level < :max_depth
    )
    SELECT m.member_id, m.sponsor_id, m.enrolled_sponsor_id, m.enrolled_at, m.status, m.name,
           m.rank, m.created_at, m.updated_at, d.level
    FROM down d
    JOIN members m ON m.program_id = :program_id AND m.member_id = d.member_id
    WHERE (d.level, d.member_id) > (:after_level, :after_id)
    ORDER BY d.level, d.member_id
    LIMIT :limit
    """
)


async def downline_page(
    session: AsyncSession,
    program_id: str,
    root: str,
    *,
    max_depth: int,
    after: tuple[int, str],
    limit: int,
) -> list[RelativeRow]:
    """One page of the team below `root`, ordered by level then id, strictly after `after`."""
    rows = await session.execute(
        _DOWNLINE_PAGE,
        {
            "program_id": program_id,
            "root": root,
            "max_depth": max_depth,
            "after_level": after[0],
            "after_id": after[1],
            "limit": limit,
        },
    )
    return [RelativeRow(member=_member(r._mapping), level=r.level) for r in rows]


_TEAM_COUNTS = text(
    """
    WITH RECURSIVE down(member_id, level) AS (
        SELECT c.member_id, 1
        FROM members c
        WHERE c.program_id = :program_id AND c.sponsor_id = :root
      UNION ALL
        SELECT c.member_id, d.level + 1
        FROM down d
        JOIN members c ON c.program_id = :program_id AND c.sponsor_id = d.member_id
    )
    SELECT count(*) FILTER (WHERE level = 1) AS direct_recruits, count(*) AS downline_size
    FROM down
    """
)


async def team_counts(session: AsyncSession, program_id: str, root: str) -> tuple[int, int]:
    """(direct recruits, whole downline size) of `root`."""
    row = (await session.execute(_TEAM_COUNTS, {"program_id": program_id, "root": root})).one()
    return int(row.direct_recruits), int(row.downline_size)


@dataclass(frozen=True, slots=True)
class MoveRow:
    move_id: int
    member_id: str
    from_sponsor_id: str | None
    to_sponsor_id: str | None
    moved_at: datetime


async def moves_of(
    session: AsyncSession, program_id: str, member_id: str, *, after_move_id: int, limit: int
) -> list[MoveRow]:
    """The member's moves, oldest first."""
    rows = await session.execute(
        select(
            member_moves.c.move_id,
            member_moves.c.member_id,
            member_moves.c.from_sponsor_id,
            member_moves.c.to_sponsor_id,
            member_moves.c.moved_at,
        )
        .where(
            member_moves.c.program_id == program_id,
            member_moves.c.member_id == member_id,
            member_moves.c.move_id > after_move_id,
        )
        .order_by(member_moves.c.move_id)
        .limit(limit)
    )
    return [MoveRow(**r._mapping) for r in rows]


async def get_members(
    session: AsyncSession, program_id: str, member_ids: list[str]
) -> dict[str, MemberRow]:
    """The members among these ids that exist, in one query."""
    if not member_ids:
        return {}
    rows = await session.execute(
        select(*_COLUMNS).where(
            members.c.program_id == program_id, members.c.member_id.in_(member_ids)
        )
    )
    return {row.member_id: _member(row._mapping) for row in rows}


_INSERT_MEMBERS = text(
    """
    INSERT INTO members
        (program_id, member_id, sponsor_id, enrolled_sponsor_id, enrolled_at, name, status)
    SELECT :program_id, n.member_id, n.sponsor_id, n.sponsor_id, n.enrolled_at, n.name, 'active'
    FROM unnest(CAST(:member_ids AS text[]), CAST(:sponsor_ids AS text[]),
                CAST(:enrolled_ats AS timestamptz[]), CAST(:names AS text[]))
         WITH ORDINALITY AS n(member_id, sponsor_id, enrolled_at, name, position)
    ORDER BY n.position
    ON CONFLICT (program_id, member_id) DO NOTHING
    RETURNING member_id, sponsor_id, enrolled_sponsor_id, enrolled_at, status, name, rank,
              created_at, updated_at
    """
)


async def insert_members(
    session: AsyncSession,
    program_id: str,
    new_members: list[tuple[str, str | None, datetime, str | None]],
) -> dict[str, MemberRow]:
    """Insert (member, sponsor, enrolled_at, name) rows, sponsors before their recruits, in
    one statement; answers those inserted (an id taken meanwhile is skipped)."""
    if not new_members:
        return {}
    rows = await session.execute(
        _INSERT_MEMBERS,
        {
            "program_id": program_id,
            "member_ids": [m for m, _, _, _ in new_members],
            "sponsor_ids": [s for _, s, _, _ in new_members],
            "enrolled_ats": [t for _, _, t, _ in new_members],
            "names": [n for _, _, _, n in new_members],
        },
    )
    return {row.member_id: _member(row._mapping) for row in rows}
