"""Interval labels of the sponsor tree: a derived index over the adjacency list.

Each member holds two labels, `lo` when a depth-first walk enters them and `hi` when it
leaves, so member D is in the downline of member M exactly when M.lo < D.lo < M.hi. The
labels are sparse integers in (0, MAX_LABEL): a new member takes two free labels just before
its sponsor's `hi`, and when none are free the smallest sparse-enough window around that
point is relabelled (an order-maintenance list, in service/db/labels.py), its labels pushed
to its two ends so that a wide gap opens where the next members will go. Enrolments stay
cheap and subtree reads become range scans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

MAX_LABEL = 2**62
"""Labels live in (0, MAX_LABEL); the forest's roots are children of a virtual root that
spans the whole range."""

GROWTH = 1.5
"""A window of 2**i labels is dense when it holds more than 2**i / GROWTH**i labels: the
order-maintenance density threshold, which keeps relabelling amortised-logarithmic."""


def split(previous: int, upper: int) -> tuple[int, int] | None:
    """Two labels for a new last child, between the sponsor's last label so far and the
    sponsor's `hi`: the middle third of the gap, leaving room both for the new member's own
    recruits and for later siblings. None when fewer than two labels are free."""
    distance = upper - previous
    if distance < 3:
        return None
    return previous + distance // 3, previous + (2 * distance) // 3


def assign(preorder: Iterable[tuple[str, int]]) -> Iterator[tuple[str, int, int, int]]:
    """(member, lo, hi, depth) for a forest given as (member, depth) in depth-first order,
    with labels evenly spread over the whole range: used to build the labels from scratch."""
    items = list(preorder)
    step = (MAX_LABEL - 1) // (2 * len(items) + 1) if items else 1
    counter = 0
    open_members: list[tuple[str, int, int]] = []
    labels: dict[str, tuple[int, int]] = {}
    for member, depth in items:
        while open_members and open_members[-1][1] >= depth:
            closed, _, closed_lo = open_members.pop()
            counter += 1
            labels[closed] = (closed_lo, counter * step)
        counter += 1
        open_members.append((member, depth, counter * step))
    while open_members:
        closed, _, closed_lo = open_members.pop()
        counter += 1
        labels[closed] = (closed_lo, counter * step)
    for member, depth in items:
        lo, hi = labels[member]
        yield member, lo, hi, depth
