"""Figures of one measurement run, and medians over runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.procs import CpuUse


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in (0, 1]) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass(frozen=True)
class Load:
    """One run of a write load: `units` sales (or events) in `seconds` of wall time."""

    units: int
    seconds: float
    latencies: list[float]  # seconds, one per request
    errors: int
    first_error: str | None
    cpu: CpuUse
    sessions: int | None = None  # database sessions opened during the run

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50(self) -> float:
        return quantile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return quantile(self.latencies, 0.99)


@dataclass(frozen=True)
class Reads:
    """One run of `calls` timed calls of one read endpoint for one member."""

    latencies: list[float]
    errors: int
    first_error: str | None
    cpu: CpuUse

    @property
    def p50(self) -> float:
        return quantile(self.latencies, 0.50)

    @property
    def p95(self) -> float:
        return quantile(self.latencies, 0.95)
