"""SQL for programs and API keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.tables import api_keys, programs


@dataclass(frozen=True, slots=True)
class ProgramRow:
    """A program; `cursor_key` signs the cursors of its lists (never shown, never logged)."""

    program_id: str
    name: str
    currency: str
    timezone: str
    created_at: datetime
    open_from: str | None
    """The oldest open period as read with the program (null: no period closed yet). A write
    that books into a period reads it again under the program's lock (db/periods.py)."""
    cursor_key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    program_id: str
    key_id: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


async def insert_program(
    session: AsyncSession, *, program_id: str, name: str, currency: str, timezone: str
) -> ProgramRow | None:
    """Insert the program; None when the id is taken."""
    statement = (
        pg_insert(programs)
        .values(program_id=program_id, name=name, currency=currency, timezone=timezone)
        .on_conflict_do_nothing(index_elements=["program_id"])
        .returning(*programs.c)
    )
    row = (await session.execute(statement)).one_or_none()
    return ProgramRow(**row._mapping) if row is not None else None


async def get_program(session: AsyncSession, program_id: str) -> ProgramRow | None:
    row = (
        await session.execute(select(*programs.c).where(programs.c.program_id == program_id))
    ).one_or_none()
    return ProgramRow(**row._mapping) if row is not None else None


async def insert_api_key(
    session: AsyncSession, *, program_id: str, key_id: str, key_hash: str, scopes: list[str]
) -> ApiKeyRow:
    row = (
        await session.execute(
            insert(api_keys)
            .values(program_id=program_id, key_id=key_id, key_hash=key_hash, scopes=scopes)
            .returning(
                api_keys.c.program_id,
                api_keys.c.key_id,
                api_keys.c.scopes,
                api_keys.c.created_at,
                api_keys.c.revoked_at,
            )
        )
    ).one()
    return ApiKeyRow(
        program_id=row.program_id,
        key_id=row.key_id,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def find_active_key(
    session: AsyncSession, *, program_id: str, key_hash: str
) -> tuple[ApiKeyRow, ProgramRow] | None:
    """The unrevoked key with this hash in this program, with its program."""
    statement = (
        select(
            api_keys.c.key_id,
            api_keys.c.scopes,
            api_keys.c.created_at.label("key_created_at"),
            api_keys.c.revoked_at,
            *programs.c,
        )
        .join(programs, programs.c.program_id == api_keys.c.program_id)
        .where(
            api_keys.c.program_id == program_id,
            api_keys.c.key_hash == key_hash,
            api_keys.c.revoked_at.is_(None),
        )
    )
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    key = ApiKeyRow(
        program_id=row.program_id,
        key_id=row.key_id,
        scopes=tuple(row.scopes),
        created_at=row.key_created_at,
        revoked_at=row.revoked_at,
    )
    program = ProgramRow(
        program_id=row.program_id,
        name=row.name,
        currency=row.currency,
        timezone=row.timezone,
        created_at=row.created_at,
        open_from=row.open_from,
        cursor_key=row.cursor_key,
    )
    return key, program


async def list_keys(session: AsyncSession, program_id: str) -> list[ApiKeyRow]:
    rows = await session.execute(
        select(
            api_keys.c.program_id,
            api_keys.c.key_id,
            api_keys.c.scopes,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .where(api_keys.c.program_id == program_id)
        .order_by(api_keys.c.created_at, api_keys.c.key_id)
    )
    return [
        ApiKeyRow(
            program_id=r.program_id,
            key_id=r.key_id,
            scopes=tuple(r.scopes),
            created_at=r.created_at,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]


async def revoke_key(session: AsyncSession, *, program_id: str, key_id: str) -> bool:
    """Revoke the key; False when this program has no such unrevoked key."""
    result = await session.execute(
        update(api_keys)
        .where(
            api_keys.c.program_id == program_id,
            api_keys.c.key_id == key_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(api_keys.c.key_id)
    )
    return result.one_or_none() is not None
