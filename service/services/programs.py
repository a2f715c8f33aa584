"""Programs (tenants) and their API keys."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import programs as program_sql
from service.db.programs import ApiKeyRow, ProgramRow
from service.domain.money import MoneyError, minor_unit
from service.domain.periods import is_valid_timezone
from service.errors import ProgramExists, ProgramNotFound, Unauthorized, ValidationFailed

KEY_PREFIX = "cmk_"
SCOPES = ("read", "events:write", "admin")
PROGRAM_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_KEY = re.compile(r"cmk_([a-z0-9][a-z0-9-]{0,62})_([0-9a-f]{40})")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one program, through one key, with its scopes."""

    program: ProgramRow
    key_id: str
    scopes: frozenset[str]

    @property
    def program_id(self) -> str:
        return self.program.program_id

    def allows(self, scope: str) -> bool:
        """`admin` may do everything; the other scopes only what they name."""
        return "admin" in self.scopes or scope in self.scopes


def hash_key(raw_key: str) -> str:
    """API keys are 160 random bits, so a plain SHA-256 is a sufficient one-way store."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


async def create_program(
    session: AsyncSession, *, program_id: str, currency: str, timezone: str, name: str | None
) -> tuple[ProgramRow, str]:
    """Create a program and its first key (scope admin); the key is shown only here."""
    if not PROGRAM_ID.fullmatch(program_id):
        raise ValidationFailed(
            "program id must be 1-63 characters of a-z, 0-9 and '-', starting with a letter"
            " or digit"
        )
    currency = currency.upper()
    try:
        minor_unit(currency)
    except MoneyError as error:
        raise ValidationFailed(f"unknown currency {currency!r}") from error
    if not is_valid_timezone(timezone):
        raise ValidationFailed(f"unknown timezone {timezone!r}")
    program = await program_sql.insert_program(
        session,
        program_id=program_id,
        name=name or program_id,
        currency=currency,
        timezone=timezone,
    )
    if program is None:
        raise ProgramExists(f"program {program_id!r} exists")
    raw_key, _ = await create_api_key(session, program_id=program_id, scopes=["admin"])
    return program, raw_key


async def create_api_key(
    session: AsyncSession, *, program_id: str, scopes: list[str]
) -> tuple[str, ApiKeyRow]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(f"scopes must be among {', '.join(SCOPES)}; got {unknown or 'none'}")
    if await program_sql.get_program(session, program_id) is None:
        raise ProgramNotFound(f"program {program_id!r} does not exist")
    secret = secrets.token_hex(20)
    raw_key = f"{KEY_PREFIX}{program_id}_{secret}"
    row = await program_sql.insert_api_key(
        session,
        program_id=program_id,
        key_id=secret[:8],
        key_hash=hash_key(raw_key),
        scopes=sorted(set(scopes)),
    )
    return raw_key, row


async def revoke_api_key(session: AsyncSession, *, program_id: str, key_id: str) -> None:
    if not await program_sql.revoke_key(session, program_id=program_id, key_id=key_id):
        raise ProgramNotFound(f"program {program_id!r} has no active key {key_id!r}")
    _KNOWN_KEYS.forget(program_id, key_id)


class _KeyCache:
    """Keys seen valid in the last few seconds, so most requests skip the key lookup.

    A revocation takes effect at once in the process that revokes, and within
    KEY_CACHE_SECONDS in every other replica.
    """

    def __init__(self, *, seconds: float, size: int) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.seconds, principal)

    def forget(self, program_id: str, key_id: str) -> None:
        for key_hash, (_, principal) in list(self._entries.items()):
            if principal.program_id == program_id and principal.key_id == key_id:
                del self._entries[key_hash]


KEY_CACHE_SECONDS = 5.0
_KNOWN_KEYS = _KeyCache(seconds=KEY_CACHE_SECONDS, size=10_000)


async def authenticate(session: AsyncSession, raw_key: str) -> Principal:
    """The program and scopes of a bearer key; any unknown or revoked key is 401."""
    match = _KEY.fullmatch(raw_key)
    if match is None:
        raise Unauthorized("the API key is not valid")
    key_hash = hash_key(raw_key)
    cached = _KNOWN_KEYS.get(key_hash)
    if cached is not None:
        return cached
    found = await program_sql.find_active_key(session, program_id=match.group(1), key_hash=key_hash)
    if found is None:
        raise Unauthorized("the API key is not valid")
    key, program = found
    principal = Principal(program=program, key_id=key.key_id, scopes=frozenset(key.scopes))
    _KNOWN_KEYS.put(key_hash, principal)
    return principal
