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


def test_split_gives_each_recruit_a_harmonic_share_of_the_gap() -> None:
    # 99 labels free between 0 and 100: the first recruit takes 99 * 3 // 4 = 74 of them
    assert split(0, 100, 0) == (1, 74)
    # the fourth (3 placed) after 60: 39 free, 39 // 5 = 7
    assert split(60, 100, 3) == (61, 67)
    # never fewer than two labels, never past the sponsor's hi
    assert split(10, 13, 50) == (11, 12)
    assert split(10, 12, 0) is None


@given(
    st.integers(min_value=0, max_value=MAX_LABEL // 2),
    st.integers(min_value=3, max_value=MAX_LABEL // 2),
    st.integers(min_value=0, max_value=10**6),
)
def test_split_stays_inside_the_gap(previous: int, distance: int, placed: int) -> None:
    upper = previous + distance
    labels = split(previous, upper, placed)
    assert labels is not None
    lo, hi = labels
    assert previous < lo < hi < upper


def test_after_k_recruits_a_share_of_one_in_k_plus_one_is_still_free() -> None:
    previous, upper = 0, 2**40
    for placed in range(300):
        labels = split(previous, upper, placed)
        assert labels is not None
        previous = labels[1]
    # harmonic: 2**40 / (2 * 301) is still free (within rounding); halving would have run out
    assert upper - previous >= 2**40 // 603


def test_a_chain_nests_47_levels_in_a_gap_of_2_to_the_23() -> None:
    # each level keeps three quarters of the free labels less the two it takes: 47 levels
    # (halving, as the middle-third split did, managed 14)
    previous, upper, levels = 0, 2**23, 0
    while (labels := split(previous, upper, 0)) is not None:
        previous, upper = labels
        levels += 1
    assert levels == 47


def test_assign_of_a_chain_is_nested_all_the_way() -> None:
    chain = [(f"C{i}", i) for i in range(1000)]
    labels = list(assign(chain))
    for (_, lo, hi, _), (_, inner_lo, inner_hi, _) in itertools.pairwise(labels):
        assert lo < inner_lo < inner_hi < hi
