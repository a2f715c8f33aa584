"""The application factory and its lifespan: the engine is made and disposed there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service import __doc__ as summary
from service.api import (
    document,
    events,
    health,
    members,
    periods,
    plans,
    problems,
    ranks,
    reports,
    sales,
    stores,
)
from service.api.middleware import BodyLimit, RequestContext
from service.config import Settings
from service.db.engine import open_database
from service.db.migrate import migrate
from service.logs import configure_logging
from service.runtime import settle_heap

VERSION = "0.1.0"


def sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    """The service. With `engine` given (tests, benchmarks) it is used as it is; otherwise the
    lifespan opens the configured database (embedded when DATABASE_URL is unset) and migrates."""
    settings = settings or Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if engine is not None:
            app.state.engine = engine
            app.state.sessionmaker = sessionmaker_for(engine)
            yield
            return
        # The embedded server this opens, this process supervises (restarts when it dies).
        async with open_database(settings, supervise=True) as opened:
            await migrate(opened)
            app.state.engine = opened
            app.state.sessionmaker = sessionmaker_for(opened)
            settle_heap()
            yield

    app = FastAPI(
        title="Commissions",
        summary=summary,
        version=VERSION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    if engine is not None:
        app.state.engine = engine
        app.state.sessionmaker = sessionmaker_for(engine)
    problems.install(app)
    routers = (
        health.router,
        members.router,
        plans.router,
        sales.router,
        reports.router,
        events.router,
        periods.router,
        ranks.router,
        stores.router,
    )
    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            events.document(schema)
            document.add_problems(schema, [route for router in routers for route in router.routes])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    return app
