"""Routes whose JSON body is read by the write path's one strict reader."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from service.intake.payloads import parse_json


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides whether a body is JSON: no content type, or application/*json."""
    if content_type is None:
        return True
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed by `parse_json` (no duplicate keys, bounded nesting,
    UTF-8 only) before FastAPI validates it, so every route refuses the same bodies the same
    way as the webhook intake does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_handler(request: Request) -> Response:
            body = await request.body()
            if body and _is_json(request.headers.get("content-type")):
                # Starlette's Request.json() answers this parsed value from now on.
                request._json = parse_json(body)
            return await handler(request)

        return strict_handler
