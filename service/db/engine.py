"""Engines and the one place where a request's transaction is opened and committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from service.config import Settings
from service.db import embedded


def asyncpg_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and pin the asyncpg driver."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


CONNECT_TIMEOUT = 10
"""Seconds to open a connection before giving up."""


def make_engine(url: str, *, pool_size: int = 10, **options: Any) -> AsyncEngine:
    # No overflow: connections beyond the pool would be opened and closed per request, and
    # a PostgreSQL backend is expensive to start; past the pool, requests queue instead.
    # A server that does not answer at all (a network outage) fails a connection attempt
    # after CONNECT_TIMEOUT seconds instead of asyncpg's 60: the request answers 503.
    options.setdefault("connect_args", {}).setdefault("timeout", CONNECT_TIMEOUT)
    # Errors never print the statement's parameters: they may hold a store's secret or a
    # member's name.
    options.setdefault("hide_parameters", True)
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        **options,
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed_connection)
    return engine


async def driver_of(session: AsyncSession) -> Any:
    """The asyncpg connection under the session, in the session's transaction: for COPY,
    and for reads of a million rows (as asyncpg records they cost a fraction of what the
    same rows cost as SQLAlchemy rows)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


async def temporary_table(session: AsyncSession, table: str, columns: str) -> None:
    """Create `table` (a constant name, with its `columns` as SQL) for the rest of the
    session's transaction: dropped when it ends, and with a savepoint rolled back (a dry
    run's); one left by an earlier use in the same transaction, as when a caller runs its
    work in savepoints of its own, is replaced."""
    await session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{table}"))
    await session.execute(text(f"CREATE TEMPORARY TABLE {table} ({columns}) ON COMMIT DROP"))


def _drop_closed_connection(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """A pooled connection the server closed (it stopped, crashed or restarted) is replaced
    at checkout rather than handed to a request to fail on. asyncpg knows without a round
    trip: the socket was closed. (A connection lost silently still fails its first statement;
    SQLAlchemy then sees the disconnect and discards every connection of the pool opened
    before it.)"""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


@asynccontextmanager
async def open_database(
    settings: Settings, *, supervise: bool = False
) -> AsyncIterator[AsyncEngine]:
    """The configured database, or the embedded server under the data directory. With
    `supervise`, an embedded server that this opened is restarted whenever it dies (see
    `embedded.Supervisor`); a server of one's own (`DATABASE_URL`) is its owner's to run."""
    with ExitStack() as owned:
        if settings.database_url:
            url = settings.database_url
        elif supervise:
            url = owned.enter_context(embedded.serving(settings.data_dir))
        else:
            server, url = embedded.start(settings.data_dir)
            owned.callback(embedded.release, server)
        engine = make_engine(url, pool_size=settings.db_pool_size)
        try:
            yield engine
        finally:
            await engine.dispose()
