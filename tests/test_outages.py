"""The database goes away and comes back: requests answer 503 `database_unavailable` (never a
500) meanwhile, nothing is half written, and the service recovers by itself.

These tests start servers of their own (not the shared test database) and kill or stop them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db import embedded, failures
from service.db.engine import make_engine
from service.main import create_app
from tests.conftest import make_program
from tests.test_cli import _admin, _environment, _free_port, _postgres_processes, _wait_ready

ENROLLED_AT = "2026-01-01T00:00:00Z"  # before every sale the tests post
SERVE = [sys.executable, "-m", "service", "serve"]
PLAN = {
    "effective_from": "2026-01-01T00:00:00Z",
    "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}},
}
UNAVAILABLE = {
    "type": "https://commissions.dev/problems/database_unavailable",
    "title": "The database is unavailable",
    "status": 503,
    "code": "database_unavailable",
    "detail": "the database cannot be reached right now; send the request again",
}


def _sale(sale_id: str) -> dict[str, str]:
    return {
        "id": sale_id,
        "member_id": "S",
        "amount": "10.00",
        "currency": "USD",
        "occurred_at": "2026-11-03T10:00:00Z",
    }


# A sale of 10.00 by S (sponsored by A): 1.00 to S (10%), 0.50 to A (5%).
LINES = [("S", 0, "1.00"), ("A", 1, "0.50")]


def _lines(sale: dict[str, Any]) -> list[tuple[str, int, str]]:
    return sorted(
        ((line["earner_id"], line["level"], line["amount"]) for line in sale["lines"]),
        key=lambda line: line[1],
    )


def _send(client: httpx.Client, sale_id: str) -> httpx.Response:
    """Odd sales by the REST call, even ones as a webhook event: both paths write a sale and
    its lines in one transaction (the event also remembers its id)."""
    if int(sale_id.removeprefix("O-")) % 2:
        return client.post("/v1/sales", json=_sale(sale_id))
    event = {
        "id": f"evt-{sale_id}",
        "type": "sale.completed",
        "occurred_at": "2026-11-03T10:00:00Z",
        "data": _sale(sale_id),
    }
    return client.post("/v1/events", json=event)


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    assert response.json() == UNAVAILABLE


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_the_embedded_server_killed_under_load_comes_back(tmp_path: Path, workers: int) -> None:
    """kill -9 of the embedded postmaster while sales arrive: each answer is 201 or 503
    `database_unavailable`, the supervisor (the serving process, or with several workers
    the process that forks them) starts the server again within seconds, and every sale is
    either whole (both its lines) or absent, which a retry then applies."""
    data_dir = tmp_path / "data"
    env = _environment(data_dir)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("w") as log:
        serving = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        try:
            _wait_ready(base, serving)  # type: ignore[arg-type]
        except AssertionError as error:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from error
        key = str(_admin(env, "program", "create", "acme", "--currency", "USD")["api_key"])
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=15) as client:
            assert client.put("/v1/plan", json=PLAN).status_code == 201
            for member, sponsor in (("A", None), ("S", "A")):
                created = client.post(
                    "/v1/members",
                    json={"id": member, "sponsor_id": sponsor, "enrolled_at": ENROLLED_AT},
                )
                assert created.status_code == 201, created.text

            answers: dict[str, int] = {}
            killed_at: float | None = None
            old_postmaster = _postmaster_pid(data_dir)
            back_after: float | None = None
            deadline = time.monotonic() + 60
            n = 0
            while time.monotonic() < deadline:
                n += 1
                sale_id = f"O-{n}"
                response = _send(client, sale_id)
                answers[sale_id] = response.status_code
                if response.status_code != 201:
                    _assert_unavailable(response)
                    assert killed_at is not None, "refused before the server was killed"
                    seller = client.get("/v1/members/S")
                    if seller.status_code != 200:
                        _assert_unavailable(seller)
                    ready = client.get("/readyz")
                    if ready.status_code != 200:  # it may be back by now
                        _assert_unavailable(ready)
                    assert client.get("/healthz").status_code == 200  # the process lives
                elif killed_at is not None and 503 in answers.values():
                    back_after = time.monotonic() - killed_at
                    break
                if n == 10:
                    os.kill(old_postmaster, signal.SIGKILL)
                    killed_at = time.monotonic()
                time.sleep(0.05)
            supervision = [
                line
                for line in (tmp_path / "serve.log").read_text().splitlines()
                if '"request"' not in line
            ]
            assert back_after is not None, f"no sale was accepted again: {supervision[-30:]}"
            assert back_after < 15, back_after
            assert sorted(set(answers.values())) == [201, 503]
            assert _postmaster_pid(data_dir) != old_postmaster
            assert client.get("/readyz").status_code == 200

            for sale_id, status in answers.items():
                stored = client.get(f"/v1/sales/{sale_id}")
                if status == 201:
                    assert stored.status_code == 200
                if stored.status_code == 200:  # whole: the sale with both its lines
                    assert _lines(stored.json()) == LINES, sale_id
                else:  # refused and absent: not a line of it was kept
                    assert stored.status_code == 404
                    assert status == 503
                    again = _send(client, sale_id)
                    assert again.status_code == 201, again.text
                    stored = client.get(f"/v1/sales/{sale_id}")
                    assert _lines(stored.json()) == LINES
            listed = client.get(
                "/v1/members/S/commissions", params={"period": "2026-11", "limit": 1000}
            )
            assert len(listed.json()["items"]) == len(answers)  # one personal line a sale
    finally:
        serving.send_signal(signal.SIGTERM)
        try:
            serving.wait(timeout=60)
        finally:
            if serving.poll() is None:
                serving.kill()
    deadline = time.monotonic() + 10
    while _postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_processes(data_dir) == []


def _stop(server: Any) -> None:
    module = embedded._server_module()
    module._commands.pg_ctl(
        ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60
    )


def _start_again(server: Any) -> None:
    with embedded._server_module().PostgresServer._lock:
        server.ensure_postgres_running()


@pytest.mark.slow
async def test_a_database_of_ones_own_stopped_and_started_again(tmp_path: Path) -> None:
    """A server given by DATABASE_URL is its owner's to run: while it is down every request
    answers 503 `database_unavailable`, and once it is back the very next request succeeds
    (the pooled connections it closed are replaced, not handed out to fail)."""
    server, url = embedded.start(tmp_path / "own")
    try:
        app = create_app(Settings(database_url=url, db_pool_size=4))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            program = await make_program(app.state.sessionmaker, "acme")
            client.headers.update(program.headers)
            assert (await client.put("/v1/plan", json=PLAN)).status_code == 201
            for member, sponsor in (("A", None), ("S", "A")):
                response = await client.post(
                    "/v1/members",
                    json={"id": member, "sponsor_id": sponsor, "enrolled_at": ENROLLED_AT},
                )
                assert response.status_code == 201
            assert (await client.post("/v1/sales", json=_sale("O-1"))).status_code == 201

            where = (server.get_postmaster_info().socket_dir, server.get_postmaster_info().port)
            _stop(server)
            for _ in range(3):
                _assert_unavailable(await client.post("/v1/sales", json=_sale("O-2")))
                _assert_unavailable(await client.get("/v1/sales/O-1"))
                _assert_unavailable(await client.get("/readyz"))
                assert (await client.get("/healthz")).status_code == 200

            _start_again(server)
            info = server.get_postmaster_info()
            assert (info.socket_dir, info.port) == where  # the same address: the same URL
            created = await client.post("/v1/sales", json=_sale("O-2"))
            assert created.status_code == 201, created.text
            assert _lines(created.json()) == LINES
            assert (await client.get("/readyz")).status_code == 200
            stored = await client.get("/v1/sales/O-1")
            assert _lines(stored.json()) == LINES

            # A restart between two requests: the pooled connection the server closed is
            # not handed to the next request, which succeeds.
            _stop(server)
            _start_again(server)
            await asyncio.sleep(0.2)  # the event loop, running meanwhile, sees the socket close
            created = await client.post("/v1/sales", json=_sale("O-3"))
            assert created.status_code == 201, created.text
    finally:
        embedded.release(server)


def test_connection_failures_are_told_apart_from_bugs() -> None:
    import asyncpg

    lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    starting = asyncpg.CannotConnectNowError("the database system is starting up")
    wrapped = OperationalError("SELECT 1", None, Exception("x"))
    wrapped.__cause__ = starting
    unique = asyncpg.UniqueViolationError("duplicate key value")
    assert failures.unavailable(ConnectionRefusedError(111, "Connection refused"))
    assert failures.unavailable(ConnectionResetError(104, "Connection reset by peer"))
    assert failures.unavailable(lost)  # SQLSTATE 08003
    assert failures.unavailable(asyncpg.AdminShutdownError("terminating connection"))  # 57P01
    assert failures.unavailable(asyncpg.CrashShutdownError("crash"))  # 57P02
    assert failures.unavailable(starting)  # 57P03
    assert failures.unavailable(wrapped)
    assert failures.unavailable(InterfaceError("SELECT 1", None, lost))
    invalidated = DBAPIError("SELECT 1", None, Exception(), connection_invalidated=True)
    assert failures.unavailable(invalidated)
    assert failures.unavailable(asyncpg.InterfaceError("connection is closed"))
    assert failures.unavailable(PoolTimeout("QueuePool limit of size 4 reached"))
    assert not failures.unavailable(unique)
    assert not failures.unavailable(DBAPIError("SELECT 1", None, unique))
    assert not failures.unavailable(RuntimeError("a bug"))
    assert not failures.unavailable(ValueError("a bug"))
    deadlock = asyncpg.DeadlockDetectedError("deadlock detected")
    assert failures.retryable(DBAPIError("UPDATE", None, deadlock))
    assert failures.retryable(asyncpg.SerializationError("could not serialize"))
    assert not failures.retryable(unique)
    assert failures.sqlstate(DBAPIError("INSERT", None, unique)) == "23505"


async def test_a_request_that_waits_too_long_for_a_connection_answers_503(
    database_url: str, engine: AsyncEngine
) -> None:
    """The pool's wait for a free connection timed out: 503, not a 500. (`engine` is the
    shared one, which built the database; this test makes its own, of one connection.)"""
    small = make_engine(database_url, pool_size=1, pool_timeout=0.2)
    app = create_app(Settings(database_url="postgresql://unused/unused"), engine=small)
    transport = httpx.ASGITransport(app=app)
    unknown_key = {"Authorization": "Bearer cmk_acme_" + "0" * 40}  # looked up in the database
    try:
        async with (
            small.connect() as held,
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            await held.execute(text("SELECT 1"))  # the pool's only connection, held
            _assert_unavailable(await client.get("/v1/members/M1", headers=unknown_key))
            await held.rollback()
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/v1/members/M1", headers=unknown_key)
            assert response.status_code == 401  # the connection is free again: looked up
    finally:
        await small.dispose()
