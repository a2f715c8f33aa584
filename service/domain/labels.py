"""Interval labels of the sponsor tree: a derived index over the adjacency list.

Each member holds two labels, `lo` when a depth-first walk enters them and `hi` when it
leaves, so member D is in the downline of member M exactly when M.lo < D.lo < M.hi. The
labels are sparse integers in (0, MAX_LABEL): a new member takes two free labels after its
sponsor's last recruit and before its `hi` (see `split`), and when none are free the smallest
sparse-enough window around that point is relabelled (an order-maintenance list, in
service/db/labels.py), its labels pushed to its two ends so that a wide gap opens where the
next members will go. Enrolments stay cheap and subtree reads become range scans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

MAX_LABEL = 2**62
"""Labels live in (0, MAX_LABEL); the forest's roots are children of a virtual root that
spans the whole range."""

GROWTH = 1.5
"""A window of 2**i labels is dense when it holds more than 2**i / GROWTH**i labels: the
order-maintenance density threshold, which keeps relabelling amortised-logarithmic."""


def split(previous: int, upper: int, placed: int) -> tuple[int, int] | None:
    """Two labels for a sponsor's next recruit: after `previous`, the sponsor's last label
    so far, and before `upper`, its `hi`, when `placed` recruits are already inside.

    The first recruit takes three quarters of the free labels, so that a chain (each member
    the only recruit of the last) spends under half a bit of the label range a level; each
    later recruit takes 1/(placed + 2) of what is left, so that after k recruits 1/(2(k+1))
    of the gap is still free: it shrinks harmonically, not geometrically, and a sponsor of
    hundreds keeps room for more. None when fewer than two labels are free.
    """
    free = upper - previous - 1
    if free < 2:
        return None
    share = free * 3 // 4 if placed == 0 else free // (placed + 2)
    return previous + 1, previous + max(2, share)


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
