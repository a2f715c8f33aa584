"""Paid-as ranks: worked trees, and properties over random trees checked against a plain
re-reading of the rule (every team walked member by member)."""

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.ranks import (
    Check,
    LegRule,
    MemberVolume,
    Progress,
    Rank,
    RankProgress,
    Requirement,
    Standing,
    checks,
    decide_ranks,
    progress,
)

D = Decimal

# The example plan: Bronze on personal volume; Silver adds organization volume; Gold adds
# the maximum-leg rule (each leg counts for at most 0.40 x 5000 = 2000), two legs holding
# a Silver or higher, and three active recruits.
BRONZE = Rank("Bronze", min_personal_volume=D("100.00"), differential_rate=D("0.03"))
SILVER = Rank(
    "Silver",
    min_personal_volume=D("100.00"),
    min_organization_volume=D("1000.00"),
    unlocked_levels=5,
    differential_rate=D("0.06"),
)
GOLD = Rank(
    "Gold",
    min_personal_volume=D("100.00"),
    min_organization_volume=D("5000.00"),
    max_leg_share=D("0.40"),
    min_legs=LegRule(count=2, rank=1),
    min_active_recruits=3,
    unlocked_levels=10,
    differential_rate=D("0.09"),
)
RANKS = (BRONZE, SILVER, GOLD)
NAMES = [rank.name for rank in RANKS]


def tree(*rows: tuple[str, str | None, str], inactive: Sequence[str] = ()) -> list[MemberVolume]:
    return [MemberVolume(m, s, m not in inactive, D(pv)) for m, s, pv in rows]


def ranks_of(standings: dict[str, Standing]) -> dict[str, str | None]:
    return {
        member: None if standing.rank is None else NAMES[standing.rank]
        for member, standing in standings.items()
    }


def test_the_maximum_leg_rule_decides_gold() -> None:
    # G sponsors A, B, C; A sponsors A1.
    # A1: PV 3000, OV 3000 -> Silver (no recruits, so no Gold).
    # A:  PV 1000, OV 1000 + 3000 = 4000 -> Silver (one leg: Gold needs two).
    # B:  PV 1200, OV 1200 -> Silver.  C: PV 300, OV 300 -> Bronze.
    # G:  PV 100, OV 100 + 4000 + 1200 + 300 = 5600 >= 5000, but each leg counts for at most
    #     0.40 x 5000 = 2000: 100 + 2000 + 1200 + 300 = 3600 < 5000 -> Silver, not Gold,
    #     although it has two Silver legs (A, B) and three active recruits.
    members = tree(
        ("G", None, "100"), ("A", "G", "1000"), ("A1", "A", "3000"), ("B", "G", "1200"),
        ("C", "G", "300"),
    )  # fmt: skip
    standings = decide_ranks(RANKS, members)
    assert ranks_of(standings) == {
        "G": "Silver", "A": "Silver", "A1": "Silver", "B": "Silver", "C": "Bronze"
    }  # fmt: skip
    g = standings["G"]
    assert g.organization_volume == D("5600")
    assert [(leg.member_id, leg.volume, leg.best_rank) for leg in g.legs] == [
        ("A", D("4000"), 1),
        ("B", D("1200"), 1),
        ("C", D("300"), 0),
    ]
    assert checks(GOLD, g) == (
        Check(Requirement.PERSONAL_VOLUME, D("100.00"), D("100"), True),
        Check(Requirement.ORGANIZATION_VOLUME, D("5000.00"), D("3600.0000"), False),
        Check(Requirement.LEGS, 2, 2, True),
        Check(Requirement.ACTIVE_RECRUITS, 3, 3, True),
    )

    # C sells 1400 more: C's leg is 1700, and G counts 100 + 2000 + 1200 + 1700 = 5000: Gold.
    members[-1] = MemberVolume("C", "G", True, D("1700"))
    assert ranks_of(decide_ranks(RANKS, members))["G"] == "Gold"


def test_a_leg_is_qualified_by_a_rank_three_levels_down() -> None:
    # G's legs: X (X -> Y -> Z, where only Z sells: 1000, so Z is Silver, three levels below
    # G), W (Silver on its own 2500) and V (Silver on 1900). X and Y have no volume and hold
    # no rank, yet X's leg holds a Silver: three Silver legs. G: PV 100; OV 100 + 1000 +
    # 2500 + 1900 = 5500, counted with the 2000 cap: 100 + 1000 + 2000 + 1900 = 5000, enough;
    # but X has no PV, so G has 2 active recruits (W, V), not 3 -> Silver.
    members = tree(
        ("G", None, "100"), ("X", "G", "0"), ("Y", "X", "0"), ("Z", "Y", "1000"),
        ("W", "G", "2500"), ("V", "G", "1900"),
    )  # fmt: skip
    standings = decide_ranks(RANKS, members)
    assert ranks_of(standings) == {
        "G": "Silver", "X": None, "Y": None, "Z": "Silver", "W": "Silver", "V": "Silver"
    }  # fmt: skip
    assert [leg.best_rank for leg in standings["G"].legs] == [1, 1, 1]  # V, W, X: sorted by id
    assert standings["G"].active_recruits == 2
    # X sells 1 (PV above zero): three active recruits, and G is Gold (counted 5001); the
    # leg X still holds its Silver three levels down (X itself holds no rank: PV 1 < 100).
    members[1] = MemberVolume("X", "G", True, D("1"))
    assert ranks_of(decide_ranks(RANKS, members))["G"] == "Gold"


def test_progress_says_what_is_missing_for_the_next_rank() -> None:
    # The maximum-leg tree: G is Silver; Gold misses only the counted organization volume
    # (3600 of 5000). C is Bronze: Silver misses the organization volume (300 of 1000).
    members = tree(
        ("G", None, "100"), ("A", "G", "1000"), ("A1", "A", "3000"), ("B", "G", "1200"),
        ("C", "G", "300"),
    )  # fmt: skip
    standings = decide_ranks(RANKS, members)
    g = progress(RANKS, standings["G"])
    assert (g.rank, g.next_rank) == ("Silver", "Gold")
    assert g.missing == (
        Check(Requirement.ORGANIZATION_VOLUME, D("5000.00"), D("3600.0000"), False),
    )
    assert [(r.name, r.qualified) for r in g.ranks] == [
        ("Bronze", True), ("Silver", True), ("Gold", False)
    ]  # fmt: skip
    assert g.ranks[2] == RankProgress("Gold", False, checks(GOLD, standings["G"]))
    c = progress(RANKS, standings["C"])
    assert (c.rank, c.next_rank, c.missing) == (
        "Bronze",
        "Silver",
        (Check(Requirement.ORGANIZATION_VOLUME, D("1000.00"), D("300"), False),),
    )


def test_progress_at_the_top_and_for_an_inactive_member() -> None:
    # T alone with PV 6000 and three active recruits of PV 2500 each (each Silver): OV
    # 13500, counted 6000 + 3 x 2000 = 12000: Gold, nothing above it.
    members = tree(
        ("T", None, "6000"), ("R1", "T", "2500"), ("R2", "T", "2500"), ("R3", "T", "2500"),
    )  # fmt: skip
    top = progress(RANKS, decide_ranks(RANKS, members)["T"])
    assert top == Progress("Gold", top.ranks, None, ())
    assert all(r.qualified for r in top.ranks)
    # The same figures for an inactive T: no rank, every requirement met, and what is
    # missing for Bronze is only being active.
    idle = progress(RANKS, decide_ranks(RANKS, tree(("T", None, "6000"), inactive=["T"]))["T"])
    assert (idle.rank, idle.next_rank) == (None, "Bronze")
    assert idle.missing == (Check(Requirement.ACTIVE, 1, 0, False),)
    assert [r.qualified for r in idle.ranks] == [False, False, False]
    # A plan without ranks: nothing to reach.
    assert progress((), decide_ranks((), members)["T"]) == Progress(None, (), None, ())


def test_only_an_active_member_holds_a_rank_but_their_volume_counts_above() -> None:
    # S is inactive with PV 2000: no rank; their sponsor P (PV 100) has OV 2100 -> Silver.
    standings = decide_ranks(RANKS, tree(("P", None, "100"), ("S", "P", "2000"), inactive=["S"]))
    assert ranks_of(standings) == {"P": "Silver", "S": None}
    assert standings["P"].active_recruits == 0


def test_refunds_beyond_sales_lower_the_team_volume() -> None:
    # R's PV is -300 (refunds booked exceed sales); P: 1200 - 300 = 900 < 1000 -> Bronze.
    standings = decide_ranks(RANKS, tree(("P", None, "1200"), ("R", "P", "-300")))
    assert standings["P"].organization_volume == D("900")
    assert ranks_of(standings) == {"P": "Bronze", "R": None}


def test_legs_by_volume_and_requirements_that_do_not_nest() -> None:
    # Leader needs two legs of 500 and no personal volume; Starter needs PV 50. L (PV 0)
    # with legs of 600 and 500 is a Leader; a member can hold Leader without Starter.
    ranks = (
        Rank("Starter", min_personal_volume=D("50")),
        Rank("Leader", min_legs=LegRule(count=2, volume=D("500"))),
    )
    standings = decide_ranks(ranks, tree(("L", None, "0"), ("A", "L", "600"), ("B", "L", "500")))
    assert [standings[m].rank for m in ("L", "A", "B")] == [1, 0, 0]


def test_a_sponsor_outside_the_members_given_is_a_root_and_a_cycle_is_refused() -> None:
    assert ranks_of(decide_ranks(RANKS, tree(("A", "GONE", "100")))) == {"A": "Bronze"}
    with pytest.raises(ValueError, match="cycle"):
        decide_ranks(RANKS, tree(("A", "B", "1"), ("B", "A", "1"), ("C", None, "1")))


# ---- properties -----------------------------------------------------------------------

VOLUMES = st.integers(min_value=-200, max_value=3000).map(lambda cents: D(cents) / 2)

PLANS = st.sampled_from(
    [
        RANKS,
        (
            Rank("One", min_active_recruits=1),
            Rank("Two", min_legs=LegRule(count=2, volume=D("300"))),
            Rank("Three", min_organization_volume=D("2000"), max_leg_share=D("0.5")),
            Rank("Four", min_legs=LegRule(count=2, rank=2), min_personal_volume=D("10")),
        ),
    ]
)


@st.composite
def trees(draw: st.DrawFn) -> list[MemberVolume]:
    size = draw(st.integers(min_value=1, max_value=40))
    members = []
    for index in range(size):
        sponsor = None if index == 0 else draw(st.integers(min_value=0, max_value=index - 1))
        members.append(
            MemberVolume(
                f"M{index}",
                None if sponsor is None else f"M{sponsor}",
                draw(st.sampled_from([True, True, True, False])),  # mostly active
                draw(VOLUMES),
            )
        )
    return members


def _plain_reading(ranks: Sequence[Rank], members: list[MemberVolume]) -> dict[str, int | None]:
    """The rule read plainly: every member's team walked afresh, legs qualified by ranks
    decided in an order where everyone below is decided first (deepest first)."""
    recruits = {m.member_id: [r for r in members if r.sponsor_id == m.member_id] for m in members}

    def team(member_id: str) -> list[MemberVolume]:
        found = []
        for recruit in recruits[member_id]:
            found.append(recruit)
            found.extend(team(recruit.member_id))
        return found

    def depth(member: MemberVolume) -> int:
        by_id = {m.member_id: m for m in members}
        level = 0
        while member.sponsor_id is not None:
            member = by_id[member.sponsor_id]
            level += 1
        return level

    decided: dict[str, int | None] = {}
    for member in sorted(members, key=depth, reverse=True):
        pv = member.personal_volume
        legs = recruits[member.member_id]
        leg_volumes = [r.personal_volume + sum(t.personal_volume for t in team(r.member_id))
                       for r in legs]  # fmt: skip
        leg_best = [
            max((_level(decided[x.member_id]) for x in [r, *team(r.member_id)]), default=-1)
            for r in legs
        ]
        rank_held = None
        for index, rank in enumerate(ranks):
            ok = member.active
            if rank.min_personal_volume is not None:
                ok = ok and pv >= rank.min_personal_volume
            if rank.min_organization_volume is not None:
                cap = None
                if rank.max_leg_share is not None:
                    cap = rank.max_leg_share * rank.min_organization_volume
                counted = pv + sum(v if cap is None else min(v, cap) for v in leg_volumes)
                ok = ok and counted >= rank.min_organization_volume
            if rank.min_legs is not None:
                rule = rank.min_legs
                if rule.rank is not None:
                    good = sum(1 for b in leg_best if b >= rule.rank)
                else:
                    assert rule.volume is not None
                    good = sum(1 for v in leg_volumes if v >= rule.volume)
                ok = ok and good >= rule.count
            if rank.min_active_recruits is not None:
                active = sum(1 for r in legs if r.active and r.personal_volume > 0)
                ok = ok and active >= rank.min_active_recruits
            if ok:
                rank_held = index
        decided[member.member_id] = rank_held
    return decided


def _level(rank: int | None) -> int:
    return -1 if rank is None else rank


@settings(max_examples=300)
@given(ranks=PLANS, members=trees())
def test_ranks_are_what_a_plain_reading_of_the_rule_decides(
    ranks: tuple[Rank, ...], members: list[MemberVolume]
) -> None:
    standings = decide_ranks(ranks, members)
    assert {m: s.rank for m, s in standings.items()} == _plain_reading(ranks, members)


@settings(max_examples=300)
@given(ranks=PLANS, members=trees())
def test_a_rank_never_needs_more_than_the_team_has(
    ranks: tuple[Rank, ...], members: list[MemberVolume]
) -> None:
    for standing in decide_ranks(ranks, members).values():
        if standing.rank is None:
            continue
        rank = ranks[standing.rank]
        assert standing.active
        assert all(check.met for check in checks(rank, standing))
        if rank.min_organization_volume is not None:
            assert standing.organization_volume >= rank.min_organization_volume
        if rank.min_legs is not None:
            assert len(standing.legs) >= rank.min_legs.count
        if rank.min_active_recruits is not None:
            assert len(standing.legs) >= rank.min_active_recruits
        for higher in ranks[standing.rank + 1 :]:
            assert not all(check.met for check in checks(higher, standing))


@settings(max_examples=300)
@given(ranks=PLANS, members=trees(), data=st.data())
def test_adding_volume_never_lowers_a_rank(
    ranks: tuple[Rank, ...], members: list[MemberVolume], data: st.DataObject
) -> None:
    before = decide_ranks(ranks, members)
    grown = list(members)
    for index in data.draw(st.lists(st.integers(0, len(members) - 1), min_size=1, max_size=5)):
        added = data.draw(st.integers(min_value=1, max_value=4000).map(D))
        m = grown[index]
        grown[index] = MemberVolume(m.member_id, m.sponsor_id, m.active, m.personal_volume + added)
    after = decide_ranks(ranks, grown)
    for member_id, standing in before.items():
        assert _level(after[member_id].rank) >= _level(standing.rank)


@settings(max_examples=200)
@given(ranks=PLANS, members=trees(), data=st.data())
def test_the_order_members_are_given_in_changes_nothing(
    ranks: tuple[Rank, ...], members: list[MemberVolume], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(members))
    assert decide_ranks(ranks, shuffled) == decide_ranks(ranks, members)


@settings(max_examples=200)
@given(ranks=PLANS, members=trees())
def test_progress_agrees_with_the_rank_decided(
    ranks: tuple[Rank, ...], members: list[MemberVolume]
) -> None:
    # The paid-as rank is qualified and nothing above it is; the next rank is always
    # missing something, and exactly its unmet requirements (and activity).
    for standing in decide_ranks(ranks, members).values():
        found = progress(ranks, standing)
        held = _level(standing.rank)
        assert found.rank == (None if standing.rank is None else ranks[standing.rank].name)
        assert all(not r.qualified for r in found.ranks[held + 1 :])
        if standing.rank is not None:
            assert found.ranks[held].qualified
        if held + 1 == len(ranks):
            assert (found.next_rank, found.missing) == (None, ())
            continue
        assert found.next_rank == ranks[held + 1].name
        assert found.missing
        assert all(not check.met for check in found.missing)
        unmet = [c for c in checks(ranks[held + 1], standing) if not c.met]
        assert [c for c in found.missing if c.requirement is not Requirement.ACTIVE] == unmet
        assert (Check(Requirement.ACTIVE, 1, 0, False) in found.missing) != standing.active
