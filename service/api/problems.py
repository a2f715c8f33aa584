"""Every error leaves as application/problem+json (RFC 9457) with a stable `code`."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from service.db import failures
from service.errors import (
    DatabaseUnavailable,
    MethodNotAllowed,
    NotFound,
    RetryLater,
    ServiceError,
    problem_body,
)

PROBLEM_JSON = "application/problem+json"

_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    403: "The key lacks the scope",
    404: "Not found in this program",
    405: "The path does not take this method",
    409: "Conflicts with what exists",
    413: "Too large",
    422: "Not valid, or refers to something unknown",
    503: "Nothing was written: send it again later",
}
_HEADERS = {
    "WWW-Authenticate": "The scheme to authenticate with: `Bearer`",
    "Retry-After": "Seconds to wait before sending the request again",
}

log = structlog.get_logger("service.errors")


def problem_responses(*problems: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route can answer: one per status, sent as
    application/problem+json, naming the `code`s it carries. `service.api.document` adds
    those that every route of its kind can answer (credentials, body, database)."""
    by_status: dict[int, dict[str, type[ServiceError]]] = {}
    for problem in problems:
        by_status.setdefault(problem.status, {})[problem.code] = problem
    return {
        status: _problem_entry(status, list(found.values()))
        for status, found in sorted(by_status.items())
    }


def _problem_entry(status: int, problems: Sequence[type[ServiceError]]) -> dict[str, Any]:
    ordered = sorted(problems, key=lambda problem: problem.code)
    codes = "\n".join(f"* `{problem.code}`: {problem.title}" for problem in ordered)
    entry: dict[str, Any] = {
        "description": f"{_DESCRIPTIONS[status]}. `code` is one of:\n{codes}",
        "content": {
            PROBLEM_JSON: {
                "schema": {
                    "allOf": [{"$ref": "#/components/schemas/Problem"}],
                    "properties": {
                        "status": {"const": status},
                        "code": {"enum": [problem.code for problem in ordered]},
                    },
                }
            }
        },
    }
    headers = sorted({name for problem in ordered for name in problem.headers})
    if headers:
        entry["headers"] = {
            name: {
                "description": _HEADERS[name],
                "required": all(name in problem.headers for problem in ordered),
                "schema": {"type": "string"},
            }
            for name in headers
        }
    return entry


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
    if error.status_code == 405:
        allowed = _allowed_methods(request)
        refusal: ServiceError = MethodNotAllowed(
            f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        )
        response = JSONResponse(refusal.problem(), status_code=405, media_type=PROBLEM_JSON)
        response.headers["Allow"] = ", ".join(allowed)
        return response
    codes = {404: NotFound.code}
    code = codes.get(error.status_code, f"http_{error.status_code}")
    response = problem_response(error.status_code, code, str(error.detail), str(error.detail))
    if error.headers:
        response.headers.update(error.headers)
    return response


def _allowed_methods(request: Request) -> list[str]:
    """Every method the document lists for the request's path (Starlette's own 405 names
    only those of the first route it matched, and a path has a route per method)."""
    allowed: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if _path_pattern(template).match(request.url.path):
            allowed.update(method.upper() for method in operations)
    return sorted(allowed)


@functools.cache
def _path_pattern(template: str) -> re.Pattern[str]:
    pattern, _, _ = compile_path(template)
    return pattern


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    """Concurrent requests that locked the same rows in opposite orders (two event batches,
    say): PostgreSQL rolled one back, nothing of it was written, and a retry succeeds. A lost
    or refused connection is `database_unavailable`; anything else is a bug."""
    assert isinstance(error, DBAPIError)
    if failures.retryable(error):
        log.warning("transaction rolled back by the database", path=request.url.path)
        return await _service_error(
            request,
            RetryLater(
                "a concurrent request held what this one needed; nothing was written: send it again"
            ),
        )
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
