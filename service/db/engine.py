"""Engines and the one place where a request's transaction is opened and committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


def make_engine(url: str, *, pool_size: int = 10, **options: Any) -> AsyncEngine:
    # No overflow: connections beyond the pool would be opened and closed per request, and
    # a PostgreSQL backend is expensive to start; past the pool, requests queue instead.
    return create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        **options,
    )


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The configured database, or the embedded server under the data directory."""
    server = None
    if settings.database_url:
        url = settings.database_url
    else:
        server, url = embedded.start(settings.data_dir)
    engine = make_engine(url, pool_size=settings.db_pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()
        if server is not None:
            embedded.release(server)
