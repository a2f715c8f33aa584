"""When two requests are the same request."""

import hashlib
import json

__all__ = ["fingerprint"]


def fingerprint(value: object) -> str:
    """Two requests are the same when their canonical JSON is (keys sorted, no spaces)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
