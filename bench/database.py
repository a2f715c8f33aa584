"""The PostgreSQL server the benchmark runs on: DATABASE_URL, or an embedded server started
once by this process in a fresh directory, whose URL every subprocess is given so that they
all share that one server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.procs import postgres_pid
from service.db import embedded
from service.db.engine import asyncpg_url


@dataclass(frozen=True)
class Server:
    url: str  # given to every subprocess as DATABASE_URL
    kind: str  # "embedded" or "DATABASE_URL"


@contextmanager
def open_server(database_url: str | None, data_dir: Path) -> Iterator[Server]:
    if database_url:
        yield Server(url=asyncpg_url(database_url), kind="DATABASE_URL")
        return
    handle, url = embedded.start(data_dir)
    try:
        yield Server(url=url, kind="embedded")
    finally:
        embedded.release(handle)


def connect_options(url: str) -> dict[str, Any]:
    """asyncpg.connect / create_pool keyword arguments for a SQLAlchemy-style URL."""
    parsed = make_url(asyncpg_url(url))
    host = parsed.query.get("host") or parsed.host
    port = parsed.query.get("port") or parsed.port or 5432
    return {
        "user": parsed.username,
        "password": parsed.password,
        "host": host if isinstance(host, str) else None,
        "port": int(port if isinstance(port, int | str) else 5432),
        "database": parsed.database,
    }


async def server_facts(url: str) -> tuple[str, int | None]:
    """The server's version, and its postmaster's pid when it runs on this machine."""
    connection = await asyncpg.connect(**connect_options(url))
    try:
        version = await connection.fetchval("SHOW server_version")
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        postmaster = postgres_pid(int(backend))
    finally:
        await connection.close()
    return str(version), postmaster


class Monitor:
    """One connection kept open to read the server's cumulative statistics."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: Any = None

    async def __aenter__(self) -> Monitor:
        self._connection = await asyncpg.connect(**connect_options(self.url))
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._connection.close()

    async def sessions(self) -> int | None:
        """Sessions (connections) opened on this database so far (PostgreSQL 14+).

        Backends report their statistics at most once a second and when they exit, so read
        it a second after the load stops."""
        try:
            await self._connection.execute("SELECT pg_stat_clear_snapshot()")
            value = await self._connection.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        except asyncpg.PostgresError:
            return None
        return None if value is None else int(value)
