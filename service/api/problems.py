"""Every error leaves as application/problem+json (RFC 9457) with a stable `code`."""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.schemas import Problem
from service.db import failures
from service.errors import DatabaseUnavailable, ServiceError, problem_body

PROBLEM_JSON = "application/problem+json"

_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid API key",
    403: "The key lacks the scope",
    404: "Not found in this program",
    409: "Conflicts with what exists",
    413: "Body too large",
    422: "Not valid, or refers to something unknown",
    503: "Rolled back by a concurrent request: nothing was written, send it again",
}

log = structlog.get_logger("service.errors")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries so each route documents the problems it can answer."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}


def problem_response(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
    )


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": item.get("msg", ""),
            "type": item.get("type", ""),
        }
        for item in error.errors()
    ]


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    response = JSONResponse(error.problem(), status_code=error.status, media_type=PROBLEM_JSON)
    response.headers.update(error.headers)
    return response


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = _validation_errors(error)
    if any(item["type"] == "json_invalid" for item in errors):
        return problem_response(
            400, "malformed_json", "The body is not valid JSON", "the body is not valid JSON"
        )
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(first["loc"])
    message = str(first["msg"])
    return problem_response(
        422,
        "validation_error",
        "The request is not valid",
        f"{where}: {message}" if where else message,
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(error.status_code, f"http_{error.status_code}")
    response = problem_response(error.status_code, code, str(error.detail), str(error.detail))
    if error.headers:
        response.headers.update(error.headers)
    return response


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    """Concurrent requests that locked the same rows in opposite orders (two event batches,
    say): PostgreSQL rolled one back, nothing of it was written, and a retry succeeds. A lost
    or refused connection is `database_unavailable`; anything else is a bug."""
    assert isinstance(error, DBAPIError)
    if failures.retryable(error):
        log.warning("transaction rolled back by the database", path=request.url.path)
        response = problem_response(
            503,
            "retry_later",
            "Rolled back by a concurrent request",
            "a concurrent request held what this one needed; nothing was written: send it again",
        )
        response.headers["Retry-After"] = "1"
        return response
    if failures.unavailable(error):
        return _unavailable(request, error)
    return await _unexpected(request, error)


def _unavailable(request: Request, error: BaseException) -> JSONResponse:
    log.warning(
        "database unavailable",
        path=request.url.path,
        error=type(error).__name__,
        reason=str(error)[:200],
    )
    failure = DatabaseUnavailable()
    response = JSONResponse(failure.problem(), status_code=failure.status, media_type=PROBLEM_JSON)
    response.headers.update(failure.headers)
    return response


async def _connection_error(request: Request, error: Exception) -> JSONResponse:
    """Refused, reset or closed connections, and the pool's timeout, before SQLAlchemy wraps
    them (opening a connection to a server that is down raises the OS error itself)."""
    if failures.unavailable(error):
        return _unavailable(request, error)
    return await _unexpected(request, error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    if failures.unavailable(error):  # wrapped in something else on its way out
        return _unavailable(request, error)
    log.exception("unhandled error", path=request.url.path)
    return problem_response(500, "internal_error", "Internal error", "an unexpected error occurred")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    for failure in (OSError, PoolTimeout, asyncpg.InterfaceError, asyncpg.PostgresError):
        app.add_exception_handler(failure, _connection_error)
    app.add_exception_handler(Exception, _unexpected)
