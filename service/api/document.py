"""The OpenAPI document: what FastAPI makes of the routes, with every status each operation
can answer, as application/problem+json with the codes it carries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from service.api.deps import get_db_session
from service.api.problems import PROBLEM_JSON, problem_responses
from service.api.schemas import Problem
from service.errors import (
    DatabaseUnavailable,
    DuplicateKey,
    Forbidden,
    MalformedRequest,
    PayloadTooLarge,
    RetryLater,
    ServiceError,
    Unauthorized,
    ValidationFailed,
)

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


def add_problems(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
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
