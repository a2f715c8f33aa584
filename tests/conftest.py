"""A real PostgreSQL for the tests.

TEST_DATABASE_URL points at a server (the system one in CI's second run); without it an
embedded server is started in a temporary directory. Either way a fresh database is created,
built by running the migrations, and dropped at the end. Each test runs inside a transaction
that is rolled back, so tests see each other's data never.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from service.config import Settings
from service.db import embedded
from service.db.engine import asyncpg_url, make_engine
from service.db.migrate import migrate
from service.main import create_app
from service.services import programs


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of a maintenance database on the server the tests use."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield asyncpg_url(given)
        return
    data_dir: Path = tmp_path_factory.mktemp("embedded")
    server, url = embedded.start(data_dir)
    try:
        yield url
    finally:
        embedded.release(server)


async def _admin(url: str, sql: str) -> None:
    parsed = make_url(url)
    connection = await asyncpg.connect(
        user=parsed.username,
        password=parsed.password,
        host=parsed.query.get("host") or parsed.host,
        port=int(parsed.query.get("port") or parsed.port or 5432),  # type: ignore[arg-type]
        database=parsed.database,
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database built by the migrations, dropped after the session."""
    name = f"commissions_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=10)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The test's connection: everything done on it is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
def sessions(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions whose commits become savepoints inside the test's transaction."""
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def client(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url="postgresql://unused/unused"), engine=engine)
    app.state.sessionmaker = sessions
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@dataclass(frozen=True)
class Program:
    id: str
    currency: str
    timezone: str
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


async def make_program(
    sessions: async_sessionmaker[AsyncSession],
    program_id: str,
    *,
    currency: str = "USD",
    timezone: str = "UTC",
) -> Program:
    async with sessions() as session, session.begin():
        _, key = await programs.create_program(
            session, program_id=program_id, currency=currency, timezone=timezone, name=None
        )
    return Program(id=program_id, currency=currency, timezone=timezone, admin_key=key)


async def make_key(
    sessions: async_sessionmaker[AsyncSession], program_id: str, *scopes: str
) -> dict[str, str]:
    async with sessions() as session, session.begin():
        key, _ = await programs.create_api_key(session, program_id=program_id, scopes=list(scopes))
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def program(sessions: async_sessionmaker[AsyncSession]) -> Program:
    return await make_program(sessions, "acme")


def pytest_configure(config: Any) -> None:
    os.environ.setdefault("COMMISSIONS_LOG_JSON", "true")


@pytest.fixture
def live_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that really commit, for tests of concurrency and crashes. Such tests use a
    program of their own (`live_program`), so what they leave behind touches no other test."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@pytest.fixture
async def live_client(
    engine: AsyncEngine, live_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url="postgresql://unused/unused"), engine=engine)
    app.state.sessionmaker = live_sessions
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def live_program(live_sessions: async_sessionmaker[AsyncSession]) -> Program:
    return await make_program(live_sessions, f"live-{uuid.uuid4().hex[:12]}")
