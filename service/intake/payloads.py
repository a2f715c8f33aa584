"""The one strict JSON reader of request bodies, events and import lines.

JSON that parsers disagree on is refused rather than guessed at: a repeated key (one parser
keeps the first, another the last: in a money API that is a way to smuggle a second value
past a check), text that is not UTF-8, and nesting deeper than any request needs.
"""

from __future__ import annotations

import json
from typing import Any

from service.errors import DuplicateKey, MalformedRequest

MAX_DEPTH = 32
"""No request nests deeper than this (an event batch is 4 levels deep)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"the key {printable(key)!r} appears twice in one object")
            seen.add(key)
    return mapping


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def parse_json(raw: bytes | str) -> Any:
    """The value of a JSON text, or a refusal: 400 `malformed_json` for anything that is not
    one UTF-8 JSON value nested at most `MAX_DEPTH` deep, 422 `duplicate_key` for an object
    with a key twice."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)
    except UnicodeDecodeError as error:
        raise MalformedRequest("the body is not UTF-8") from error
    except RecursionError as error:
        raise MalformedRequest(f"the JSON is nested more than {MAX_DEPTH} levels deep") from error
    except ValueError as error:
        raise MalformedRequest("the body is not valid JSON") from error
    # A text with few brackets cannot be deep; only a long one is measured (containers only).
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value):
        raise MalformedRequest(f"the JSON is nested more than {MAX_DEPTH} levels deep")
    return value


def _too_deep(value: Any) -> bool:
    level: list[Any] = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_DEPTH):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def printable(text: str) -> str:
    """Text safe to echo in an answer: a lone surrogate, which UTF-8 cannot carry, becomes
    a question mark."""
    return text.encode("utf-8", "replace").decode("utf-8")
