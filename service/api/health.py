"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.api.problems import problem_response, problem_responses
from service.errors import DatabaseUnavailable

log = structlog.get_logger("service.health")

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving. It does not ask the database, so a database
    outage never has the process restarted: requests answer 503 `database_unavailable`
    meanwhile, and the service recovers by itself when the database is back."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(DatabaseUnavailable))
async def readyz(request: Request) -> Response:
    """Readiness: the database answers. 503 `database_unavailable` while it does not (take
    the instance out of a load balancer's rotation; do not restart it)."""
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure to reach the database means not ready
        log.warning("not ready", error=type(error).__name__, reason=str(error)[:200])
        failure = DatabaseUnavailable()
        response = problem_response(failure.status, failure.code, failure.title, failure.detail)
        response.headers.update(failure.headers)
        return response
    return Response('{"status":"ready"}', media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
