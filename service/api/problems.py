"""Every error leaves as application/problem+json (RFC 9457) with a stable `code`, and the
OpenAPI document says, for every operation, each status it can answer and the codes each
status carries."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path

from service.api.deps import get_db_session
from service.api.schemas import Problem
from service.errors import (
    DatabaseUnavailable,
    DuplicateKey,
    Forbidden,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RetryLater,
    ServiceError,
    Unauthorized,
    ValidationFailed,
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
    503: "Nothing was written: send it again",
}
_HEADERS = {
    "WWW-Authenticate": "The scheme to authenticate with: `Bearer`",
    "Retry-After": "Seconds to wait before sending the request again",
}

AUTHENTICATED: tuple[type[ServiceError], ...] = (Unauthorized, Forbidden)
"""What a route that needs an API key can answer."""
JSON_BODY: tuple[type[ServiceError], ...] = (
    MalformedRequest,
    PayloadTooLarge,
    DuplicateKey,
    ValidationFailed,
)
"""What a route that reads a JSON body can answer (service.intake.payloads reads it)."""
DATABASE: tuple[type[ServiceError], ...] = (RetryLater, DatabaseUnavailable)
"""What a route that touches the database can answer."""

log = structlog.get_logger("service.errors")


def problem_responses(*problems: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route can answer: one per status, sent as
    application/problem+json, naming the `code`s it carries. `document` adds those that
    every route of its kind can answer (credentials, body, database)."""
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


def _known_problems() -> dict[str, type[ServiceError]]:
    """Every problem class, by its code (a code names one class)."""
    found: dict[str, type[ServiceError]] = {}
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        problem = pending.pop()
        if found.setdefault(problem.code, problem) is not problem:
            raise TypeError(f"two problems have the code {problem.code!r}")
        pending.extend(problem.__subclasses__())
    return found


def _touches_database(route: APIRoute) -> bool:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is get_db_session:
            return True
        pending.extend(dependency.dependencies)
    return False


def _implied(route: APIRoute, operation: dict[str, Any]) -> Iterable[type[ServiceError]]:
    """What an operation can answer by its kind alone."""
    if operation.get("security"):
        yield from AUTHENTICATED
    if "requestBody" in operation:
        yield from JSON_BODY
    if operation.get("parameters"):
        yield ValidationFailed
    if _touches_database(route):
        yield from DATABASE


def _declared(
    responses: dict[str, Any], known: dict[str, type[ServiceError]]
) -> Iterable[type[ServiceError]]:
    for entry in responses.values():
        media = entry.get("content", {}).get(PROBLEM_JSON)
        if media is not None:
            for code in media["schema"]["properties"]["code"]["enum"]:
                yield known[code]


def document(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Give every operation the problems of its kind besides those its route declares, each
    status once with all its codes, in place of FastAPI's own 422 (sent as JSON, which the
    service never sends); and describe the problem body once."""
    known = _known_problems()
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format][method.lower()]
            responses = operation["responses"]
            problems = [*_declared(responses, known), *_implied(route, operation)]
            kept = {
                status: entry
                for status, entry in responses.items()
                if not (status == "422" or PROBLEM_JSON in entry.get("content", {}))
            }
            kept.update(
                (str(status), entry) for status, entry in problem_responses(*problems).items()
            )
            operation["responses"] = dict(sorted(kept.items()))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    schema["components"]["schemas"] = dict(sorted(components.items()))


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


RETRYABLE = frozenset({"40P01", "40001"})
"""Deadlock detected, serialization failure: PostgreSQL rolled the transaction back whole."""


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    """Concurrent requests that locked the same rows in opposite orders (two event batches,
    say): PostgreSQL rolled one back, nothing of it was written, and a retry succeeds."""
    assert isinstance(error, DBAPIError)
    if getattr(error.orig, "sqlstate", None) not in RETRYABLE:
        return await _unexpected(request, error)
    log.warning("transaction rolled back by the database", path=request.url.path)
    return await _service_error(
        request,
        RetryLater(
            "a concurrent request held what this one needed; nothing was written: send it again"
        ),
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path)
    return problem_response(500, "internal_error", "Internal error", "an unexpected error occurred")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
