"""The Python runtime of a long-running process (the service, a bulk import)."""

from __future__ import annotations

import gc

YOUNG_COLLECTION_EVERY = 20_000
"""Container objects allocated (net) between two collections of the youngest generation;
Python's default is 700."""


def settle_heap() -> None:
    """Once started, take what the process built to start (modules, the app, its routes and
    schemas) out of the cycle collector's sight, and collect young objects less often.

    A request or a batch builds thousands of short-lived objects, nearly all freed at once by
    reference counting. With the default thresholds the cycle collector ran every 700 of them
    and, every hundredth time, walked the whole heap of modules and schemas as well.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 50, 100)
