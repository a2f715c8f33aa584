"""Opaque keyset cursors, signed so that a list only ever continues from a cursor it gave out.

A cursor is base64url (no padding) of a 16-byte tag followed by a small JSON array: the
list's kind, what the list was asked for (its member, period, ...) and the position of
the last item of the page. The tag is HMAC-SHA256 of the array under the program's cursor
key (kept in the database, the same for every replica, see migration 0011), cut to 128
bits. A cursor whose tag does not match is refused before its content is parsed; a valid
one still has its position checked (types, ranges, and that it names an item of the list).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from service.errors import InvalidCursor

TAG_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]{1,1024}")
_MEMBER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _tag(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:TAG_BYTES]


def encode_cursor(key: bytes, kind: str, *position: Any) -> str:
    """The cursor of a list of this `kind` continuing after `position`, signed with `key`."""
    payload = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(_tag(key, payload) + payload).decode().rstrip("=")


def refused() -> InvalidCursor:
    return InvalidCursor("the cursor is not one this list gave out")


def decode_cursor(key: bytes, cursor: str, kind: str, size: int) -> list[Any]:
    """The `size` values a cursor of this `kind` holds after its kind, once its tag is
    checked; anything else is a 422 `invalid_cursor`."""
    if not _BASE64URL.fullmatch(cursor):
        raise refused()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as error:
        raise refused() from error
    tag, payload = raw[:TAG_BYTES], raw[TAG_BYTES:]
    if not payload or not hmac.compare_digest(tag, _tag(key, payload)):
        raise refused()
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise refused() from error
    if not isinstance(value, list) or len(value) != size + 1 or value[0] != kind:
        raise refused()
    return value[1:]


def whole_number(value: Any, *, minimum: int = 0, maximum: int = 2**62) -> int:
    """A position that must be a whole number in [minimum, maximum] (ids, levels), else a
    422: a cursor never reaches the database as an out-of-range number."""
    if type(value) is not int or not minimum <= value <= maximum:
        raise refused()
    return value


def member_id(value: Any) -> str:
    """A position that must be a member id, else a 422."""
    if not isinstance(value, str) or not _MEMBER_ID.fullmatch(value):
        raise refused()
    return value
