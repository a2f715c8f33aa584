"""The OpenAPI document is what the service does: schemathesis sends requests made from the
document, valid ones and invalid ones, and checks every answer against it (status, content
type, headers, body; that invalid input is refused; a 405 for a method a path does not take;
that credentials are not ignored). Its `positive_data_acceptance` check is left out: the
document cannot say everything the service refuses (a sale's member must exist, an amount
must fit its currency), so a valid-looking request may be refused, with a documented code.

Deterministic (derandomized, no example database: the same requests on every run) and
bounded, so that it runs in CI in seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from starlette.types import Receive, Scope, Send

from service.config import Settings
from service.main import create_app
from tests.api.flows import enroll, post_sale, put_plan
from tests.conftest import Program, make_program

EXAMPLES_PER_OPERATION = 25


class ServiceUnderTest:
    """The ASGI app schemathesis calls; the `service` fixture puts the service in it. The
    document is loaded when this module is imported (schemathesis' `from_fixture` loading
    fails under pytest 9.2), before the test session makes its database."""

    def __init__(self) -> None:
        self.service: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.service is not None, "use the `service` fixture"
        await self.service(scope, receive, send)


under_test = ServiceUnderTest()

_config = SchemathesisConfig()
_config.projects.default.checks.update(excluded_check_names=["positive_data_acceptance"])
# The program's key goes with every request (`headers=` below): schemathesis is not to make
# up an Authorization header of its own, nor to count a request without one as invalid input
# when the key is sent anyway. Its `ignored_auth` check still sends requests without the key.
_config.projects.default.generation.update(
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
    with_security_parameters=False,
)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="postgresql://unused/unused")).openapi(), config=_config
)
schema.app = under_test


@pytest.fixture(scope="module")
async def seeded(engine: AsyncEngine) -> Program:
    """A program of its own (what the requests write is committed), with a plan, and the
    members and the sale that the document's examples name (`M7`, `S1`), so that requests
    made from the examples get past "not found"."""
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    program = await make_program(sessions, f"contract-{uuid.uuid4().hex[:12]}")
    app = create_app(Settings(database_url="postgresql://unused/unused"), engine=engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await put_plan(
            client,
            program,
            effective_from="2020-01-01T00:00:00Z",
            categories={"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}},
        )
        await enroll(client, program, "ROOT", None)
        await enroll(client, program, "M7", "ROOT")
        await post_sale(client, program, "S1", "M7", "100.00")
    return program


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[FastAPI]:
    """The service with an engine of its own, opened by its lifespan: schemathesis runs it
    on an event loop of its own."""
    under_test.service = create_app(Settings(database_url=database_url, log_level="WARNING"))
    yield under_test.service
    asgi.shutdown_lifespans()
    under_test.service = None


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented(case: Any, service: FastAPI, seeded: Program) -> None:
    case.call_and_validate(headers=seeded.headers)
