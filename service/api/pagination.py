"""Opaque keyset cursors: base64url of a small JSON array."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from service.errors import InvalidCursor


def encode_cursor(kind: str, *position: Any) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> list[Any]:
    """The position a cursor of this `kind` stands for; anything else is a 422."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("the cursor is not one this list gave out") from error
    if not isinstance(value, list) or not value or value[0] != kind:
        raise InvalidCursor("the cursor is not one this list gave out")
    return value[1:]


def whole_number(value: Any, *, maximum: int = 2**62) -> int:
    """A position that must be a whole number in [0, maximum] (ids, levels), else a 422:
    a forged cursor never reaches the database as an out-of-range number."""
    if type(value) is not int or not 0 <= value <= maximum:
        raise InvalidCursor("the cursor is not one this list gave out")
    return value
