from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from service.domain.labels import MAX_LABEL, assign, split


def _forest(parents: list[int | None]) -> list[tuple[str, int]]:
    """Depth-first (member, depth) of a forest given as each node's parent index."""
    children: dict[int | None, list[int]] = {}
    for node, parent in enumerate(parents):
        children.setdefault(parent, []).append(node)
    order: list[tuple[str, int]] = []
    stack = [(root, 0) for root in reversed(children.get(None, []))]
    while stack:
        node, depth = stack.pop()
        order.append((f"N{node}", depth))
        stack.extend((child, depth + 1) for child in reversed(children.get(node, [])))
    return order


@given(st.lists(st.integers(min_value=-1, max_value=10_000), min_size=1, max_size=200))
def test_assigned_labels_nest_exactly_like_the_tree(choices: list[int]) -> None:
    parents: list[int | None] = []
    for node, choice in enumerate(choices):
        parents.append(None if choice < 0 or node == 0 else choice % node)
    labelled = {m: (lo, hi, d) for m, lo, hi, d in assign(_forest(parents))}
    for node, parent in enumerate(parents):
        lo, hi, depth = labelled[f"N{node}"]
        assert 0 < lo < hi < MAX_LABEL
        ancestors = set()
        walk = parent
        while walk is not None:
            ancestors.add(walk)
            walk = parents[walk]
        assert depth == len(ancestors)
        for other in range(len(parents)):
            olo, ohi, _ = labelled[f"N{other}"]
            assert (olo < lo < ohi) == (other in ancestors)


def test_split_takes_the_middle_third() -> None:
    # between 10 and 40: a gap of 30 -> 20 and 30
    assert split(10, 40) == (20, 30)
    assert split(10, 13) == (11, 12)
    assert split(10, 12) is None


def test_assign_of_a_chain_is_nested_all_the_way() -> None:
    chain = [(f"C{i}", i) for i in range(1000)]
    labels = list(assign(chain))
    for (_, lo, hi, _), (_, inner_lo, inner_hi, _) in itertools.pairwise(labels):
        assert lo < inner_lo < inner_hi < hi
