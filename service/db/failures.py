"""What a database failure means for the request that met it.

Two kinds of failure are not the request's fault, and a retry of the same request succeeds:

* PostgreSQL rolled the transaction back whole to break a deadlock or a serialization
  conflict (`RETRYABLE`): retry at once;
* the database could not be reached, or the connection was lost mid-request (`unavailable`):
  retry once the server is back. A transaction that lost its connection is gone: PostgreSQL
  rolls back whatever it had not committed.

Everything else that goes wrong in the database is a bug (a 500).
"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

DEADLOCK = "40P01"
SERIALIZATION_FAILURE = "40001"
RETRYABLE = frozenset({DEADLOCK, SERIALIZATION_FAILURE})
"""Deadlock detected, serialization failure: PostgreSQL rolled the transaction back whole."""

SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
"""Admin shutdown, crash shutdown, cannot connect now (starting up or recovering)."""
CONNECTION_CLASS = "08"
"""Connection exceptions: refused, lost, does not exist."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped (`orig`), and their explicit causes (`raise ...
    from`, as the driver and SQLAlchemy translate errors), each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen or len(seen) > 32:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__):
            if isinstance(linked, BaseException):
                pending.append(linked)


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE PostgreSQL answered, if the failure carries one."""
    for current in _chain(error):
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def retryable(error: BaseException) -> bool:
    """PostgreSQL rolled the transaction back to break a conflict with another one."""
    return sqlstate(error) in RETRYABLE


def unavailable(error: BaseException) -> bool:
    """The database could not be reached or the connection was lost: refused, reset or closed
    mid-request, the server shutting down, crashed or still starting, the pool's wait for a
    connection timed out."""
    for current in _chain(error):
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError | PoolTimeout | asyncpg.InterfaceError):
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (
            state.startswith(CONNECTION_CLASS) or state in SHUTDOWN_STATES
        ):
            return True
    return False
