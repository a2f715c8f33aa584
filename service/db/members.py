"""SQL for members and the sponsor genealogy (recursive CTEs over the adjacency list)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
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
    members.c.referral_code,
    members.c.created_at,
    members.c.updated_at,
    members.c.depth,
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
    referral_code: str | None
    created_at: datetime
    updated_at: datetime
    depth: int


@dataclass(frozen=True, slots=True)
class RelativeRow:
    """A member seen from another one: `level` is the distance between the two."""

    member: MemberRow
    level: int


_FIELDS = len(_COLUMNS)


def _member(row: Sequence[Any]) -> MemberRow:
    """A member from a row that starts with the columns of `_COLUMNS`, in their order: every
    query here selects members so, a relative's `level` right after them (by position: a
    lookup by name per column costs more than the query itself on a page of a hundred)."""
    return MemberRow(*row[:_FIELDS])


_GET_MEMBER = select(*_COLUMNS).where(
    members.c.program_id == bindparam("program_id"), members.c.member_id == bindparam("member_id")
)
# FOR NO KEY UPDATE: a change or move of a member never changes its key, so sales that check
# their seller exists (FOR KEY SHARE) do not wait on it, nor it on them.
_GET_MEMBER_FOR_UPDATE = _GET_MEMBER.with_for_update(key_share=True)


async def get_member(
    session: AsyncSession, program_id: str, member_id: str, *, for_update: bool = False
) -> MemberRow | None:
    row = (
        await session.execute(
            _GET_MEMBER_FOR_UPDATE if for_update else _GET_MEMBER,
            {"program_id": program_id, "member_id": member_id},
        )
    ).one_or_none()
    return _member(row) if row is not None else None


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
    return _member(row)


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
                      rank, referral_code, created_at, updated_at, depth, level) AS (
        SELECT s.member_id, s.sponsor_id, s.enrolled_sponsor_id, s.enrolled_at, s.status,
               s.name, s.rank, s.referral_code, s.created_at, s.updated_at, s.depth, 1
        FROM members m
        JOIN members s ON s.program_id = m.program_id AND s.member_id = m.sponsor_id
        WHERE m.program_id = :program_id AND m.member_id = :start
      UNION ALL
        SELECT s.member_id, s.sponsor_id, s.enrolled_sponsor_id, s.enrolled_at, s.status,
               s.name, s.rank, s.referral_code, s.created_at, s.updated_at, s.depth, up.level + 1
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
    return [RelativeRow(member=_member(r), level=r[_FIELDS]) for r in rows.all()]


# Everyone below :root down to :max_depth, depth-first (a member, then their team), after
# the member :after_id: one range scan of the interval labels (ix_members_lo). The scan sits
# in a LATERAL subquery so that the root's labels bound it as index conditions; joined
# plainly, the planner may walk the whole index in label order and filter, which for a
# member with a small team (or none) reads every member of the program.
_DOWNLINE_PAGE = text(
    """
    SELECT m.member_id, m.sponsor_id, m.enrolled_sponsor_id, m.enrolled_at, m.status, m.name,
           m.rank, m.referral_code, m.created_at, m.updated_at, m.depth,
           m.depth - r.depth AS level
    FROM members r
    CROSS JOIN LATERAL (
        SELECT * FROM members m
        WHERE m.program_id = r.program_id
          AND m.lo > COALESCE((SELECT a.lo FROM members a
                               WHERE a.program_id = r.program_id AND a.member_id = :after_id
                                 AND a.lo > r.lo AND a.lo < r.hi), r.lo)
          AND m.lo < r.hi
          AND m.depth <= r.depth + :max_depth
        ORDER BY m.lo
        LIMIT :limit
    ) m
    WHERE r.program_id = :program_id AND r.member_id = :root
    ORDER BY m.lo
    """
)


# The same page when only the first few levels are asked for: one ordered range scan per
# level (ix_members_depth_lo), merged, so a shallow page of a huge team skips nothing.
_SHALLOW_DOWNLINE_PAGE = text(
    """
    SELECT m.member_id, m.sponsor_id, m.enrolled_sponsor_id, m.enrolled_at, m.status, m.name,
           m.rank, m.referral_code, m.created_at, m.updated_at, m.depth,
           m.depth - r.depth AS level
    FROM members r
    CROSS JOIN LATERAL generate_series(1, :max_depth) AS wanted(level)
    CROSS JOIN LATERAL (
        SELECT * FROM members m
        WHERE m.program_id = r.program_id AND m.depth = r.depth + wanted.level
          AND m.lo > COALESCE((SELECT a.lo FROM members a
                               WHERE a.program_id = r.program_id AND a.member_id = :after_id
                                 AND a.lo > r.lo AND a.lo < r.hi), r.lo)
          AND m.lo < r.hi
        ORDER BY m.lo
        LIMIT :limit
    ) m
    WHERE r.program_id = :program_id AND r.member_id = :root
    ORDER BY m.lo
    LIMIT :limit
    """
)
SHALLOW_LEVELS = 8


async def downline_page(
    session: AsyncSession,
    program_id: str,
    root: str,
    *,
    max_depth: int,
    after_id: str | None,
    limit: int,
) -> list[RelativeRow]:
    """One page of the team below `root`, depth-first, after the member `after_id`."""
    rows = await session.execute(
        _SHALLOW_DOWNLINE_PAGE if max_depth <= SHALLOW_LEVELS else _DOWNLINE_PAGE,
        {
            "program_id": program_id,
            "root": root,
            "max_depth": max_depth,
            "after_id": after_id,
            "limit": limit,
        },
    )
    return [RelativeRow(member=_member(r), level=r[_FIELDS]) for r in rows.all()]


_TEAM_COUNTS = text(
    """
    SELECT (SELECT count(*) FROM members c
            WHERE c.program_id = r.program_id AND c.sponsor_id = r.member_id) AS direct_recruits,
           (SELECT count(*) FROM members d
            WHERE d.program_id = r.program_id AND d.lo > r.lo AND d.lo < r.hi) AS downline_size
    FROM members r
    WHERE r.program_id = :program_id AND r.member_id = :root
    """
)


_IN_DOWNLINE = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM members r
        JOIN members m ON m.program_id = r.program_id AND m.member_id = :member_id
        WHERE r.program_id = :program_id AND r.member_id = :root
          AND m.lo > r.lo AND m.lo < r.hi AND m.depth <= r.depth + :max_depth
    )
    """
)


async def is_in_downline(
    session: AsyncSession, program_id: str, *, root: str, member_id: str, max_depth: int
) -> bool:
    """Whether `member_id` is in the team below `root`, at most `max_depth` levels down."""
    result = await session.execute(
        _IN_DOWNLINE,
        {"program_id": program_id, "root": root, "member_id": member_id, "max_depth": max_depth},
    )
    return bool(result.scalar_one())


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


async def is_move_of(
    session: AsyncSession, program_id: str, *, member_id: str, move_id: int
) -> bool:
    found = await session.scalar(
        select(member_moves.c.move_id).where(
            member_moves.c.program_id == program_id,
            member_moves.c.member_id == member_id,
            member_moves.c.move_id == move_id,
        )
    )
    return found is not None


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
    return {row.member_id: _member(row) for row in rows}


_INSERT_MEMBERS = text(
    """
    INSERT INTO members (program_id, member_id, sponsor_id, enrolled_sponsor_id, enrolled_at,
                         name, referral_code, status, lo, hi, depth)
    SELECT :program_id, n.member_id, n.sponsor_id, n.sponsor_id, n.enrolled_at, n.name,
           n.referral_code, 'active', n.lo, n.hi, n.depth
    FROM unnest(CAST(:member_ids AS text[]), CAST(:sponsor_ids AS text[]),
                CAST(:enrolled_ats AS timestamptz[]), CAST(:names AS text[]),
                CAST(:codes AS text[]), CAST(:los AS bigint[]), CAST(:his AS bigint[]),
                CAST(:depths AS int[]))
         WITH ORDINALITY AS n(member_id, sponsor_id, enrolled_at, name, referral_code, lo, hi,
                              depth, position)
    ORDER BY n.position
    ON CONFLICT (program_id, member_id) DO NOTHING
    RETURNING member_id, sponsor_id, enrolled_sponsor_id, enrolled_at, status, name, rank,
              referral_code, created_at, updated_at, depth
    """
)


@dataclass(frozen=True, slots=True)
class NewMember:
    member_id: str
    sponsor_id: str | None
    enrolled_at: datetime
    name: str | None
    referral_code: str | None
    lo: int
    hi: int
    depth: int


async def insert_members(
    session: AsyncSession, program_id: str, new_members: list[NewMember]
) -> dict[str, MemberRow]:
    """Insert members, sponsors before their recruits, in one statement; answers those
    inserted (an id taken meanwhile is skipped)."""
    if not new_members:
        return {}
    rows = await session.execute(
        _INSERT_MEMBERS,
        {
            "program_id": program_id,
            "member_ids": [m.member_id for m in new_members],
            "sponsor_ids": [m.sponsor_id for m in new_members],
            "enrolled_ats": [m.enrolled_at for m in new_members],
            "names": [m.name for m in new_members],
            "codes": [m.referral_code for m in new_members],
            "los": [m.lo for m in new_members],
            "his": [m.hi for m in new_members],
            "depths": [m.depth for m in new_members],
        },
    )
    return {row.member_id: _member(row) for row in rows}


async def members_by_referral_code(
    session: AsyncSession, program_id: str, codes: Sequence[str]
) -> dict[str, MemberRow]:
    """The members holding these referral codes, by the code in lower case (codes are
    unique in a program whatever their case)."""
    if not codes:
        return {}
    wanted = sorted({code.lower() for code in codes})
    rows = await session.execute(
        select(*_COLUMNS).where(
            members.c.program_id == program_id,
            members.c.referral_code.is_not(None),  # as the unique index on codes is partial
            func.lower(members.c.referral_code).in_(wanted),
        )
    )
    found = {}
    for row in rows:
        member = _member(row)
        assert member.referral_code is not None
        found[member.referral_code.lower()] = member
    return found
