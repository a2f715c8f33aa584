"""The array evaluation of ranks against the domain's rule: on random plans (every
requirement, ranks that do and do not build on the one below, leg caps of many places)
and random teams (forests, chains, a team cut out of a larger tree), every member's rank,
best rank below, organization volume and active recruits are what
`service.domain.ranks.decide` gives."""

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from service.compute.ranks import VOLUME_PLACES, Team, TeamRanks, decide_team
from service.domain.labels import assign
from service.domain.ranks import LegRule, MemberVolume, Rank, decide

D = Decimal

AMOUNTS = st.sampled_from(
    [D("0"), D("0.0001"), D("10"), D("50.5"), D("100"), D("333.33"), D("1000")]
)
SHARES = st.sampled_from([D("0.5"), D("0.4"), D("0.3333333333"), D("1")])


@st.composite
def plans(draw: st.DrawFn) -> tuple[Rank, ...]:
    ranks = []
    for index in range(draw(st.integers(min_value=1, max_value=5))):
        organization = draw(st.none() | AMOUNTS.map(lambda amount: amount * 3))
        legs = None
        if draw(st.booleans()):
            count = draw(st.integers(min_value=1, max_value=2))
            if index and draw(st.booleans()):
                legs = LegRule(count, rank=draw(st.integers(min_value=0, max_value=index - 1)))
            else:
                legs = LegRule(count, volume=draw(AMOUNTS) + D("0.01"))
        ranks.append(
            Rank(
                f"R{index}",
                min_personal_volume=draw(st.none() | AMOUNTS),
                min_organization_volume=organization,
                max_leg_share=None if organization is None else draw(st.none() | SHARES),
                min_legs=legs,
                min_active_recruits=draw(st.none() | st.integers(min_value=0, max_value=3)),
            )
        )
    return tuple(ranks)


# A ladder like a real plan's, low enough that random teams climb it: each rank from Gold
# up needs two legs holding the rank below, so deciding the top waits on every rank.
LADDER = (
    Rank("Bronze", min_personal_volume=D("50")),
    Rank("Silver", min_personal_volume=D("50"), min_organization_volume=D("300"),
         min_active_recruits=1),
    Rank("Gold", min_organization_volume=D("1000"), max_leg_share=D("0.5"),
         min_legs=LegRule(2, rank=1)),
    Rank("Platinum", min_organization_volume=D("2000"), max_leg_share=D("0.4"),
         min_legs=LegRule(2, rank=2)),
    Rank("Diamond", min_legs=LegRule(2, rank=3)),
)  # fmt: skip
PLANS = st.one_of(plans(), st.just(LADDER))


@st.composite
def forests(draw: st.DrawFn) -> list[MemberVolume]:
    """Members M0..Mn, each sponsored by an earlier one (or a root), with volumes of up to
    four places, some negative; sometimes a chain (each the only recruit of the last)."""
    size = draw(st.integers(min_value=1, max_value=80))
    chain = draw(st.booleans())
    members = []
    for index in range(size):
        if index == 0 or draw(st.integers(min_value=0, max_value=24)) == 0:
            sponsor = None
        elif chain:
            sponsor = index - 1
        else:
            sponsor = draw(st.integers(min_value=max(0, index - 8), max_value=index - 1))
        units = draw(st.integers(min_value=-300_0000, max_value=1_500_0000))
        members.append(
            MemberVolume(
                f"M{index}",
                None if sponsor is None else f"M{sponsor}",
                draw(st.sampled_from([True, True, True, False])),
                D(units).scaleb(-VOLUME_PLACES),
            )
        )
    return members


def as_team(members: Sequence[MemberVolume]) -> tuple[Team, list[str]]:
    """The members as the database answers a team: depth-first, with their tree labels."""
    ids = {m.member_id for m in members}
    recruits: dict[str | None, list[MemberVolume]] = {}
    for member in members:
        sponsor = member.sponsor_id if member.sponsor_id in ids else None
        recruits.setdefault(sponsor, []).append(member)
    preorder: list[tuple[str, int]] = []
    stack = [(root, 5) for root in reversed(recruits[None])]  # a team deep in the tree
    while stack:
        member, depth = stack.pop()
        preorder.append((member.member_id, depth))
        stack.extend((r, depth + 1) for r in reversed(recruits.get(member.member_id, [])))
    by_id = {m.member_id: m for m in members}
    rows = sorted(assign(preorder), key=lambda row: row[1])
    team = Team(
        lo=np.array([row[1] for row in rows], dtype=np.int64),
        hi=np.array([row[2] for row in rows], dtype=np.int64),
        depth=np.array([row[3] for row in rows], dtype=np.int64),
        active=np.array([by_id[row[0]].active for row in rows], dtype=np.bool_),
        personal=np.array(
            [int(by_id[row[0]].personal_volume.scaleb(VOLUME_PLACES)) for row in rows],
            dtype=np.int64,
        ),
    )
    return team, [row[0] for row in rows]


def assert_same_decision(ranks: tuple[Rank, ...], members: Sequence[MemberVolume]) -> TeamRanks:
    team, order = as_team(members)
    found = decide_team(ranks, team)
    assert found is not None
    expected = decide(ranks, members)
    at = {member: i for i, member in enumerate(expected.member_ids)}
    position = {member: i for i, member in enumerate(order)}
    for member in order:
        i, j = at[member], position[member]
        assert int(found.rank[j]) == (-1 if expected.rank[i] is None else expected.rank[i])
        assert int(found.best[j]) == (-1 if expected.best[i] is None else expected.best[i])
        assert found.volume(found.organization[j]) == expected.organization[i]
        assert int(found.active_recruits[j]) == expected.active_recruits[i]
        sponsor = expected.sponsor[i]
        assert int(found.sponsor[j]) == (
            -1 if sponsor < 0 else position[expected.member_ids[sponsor]]
        )
    return found


@settings(max_examples=400, deadline=None)
@given(ranks=PLANS, members=forests())
def test_arrays_decide_what_the_domain_decides(
    ranks: tuple[Rank, ...], members: list[MemberVolume]
) -> None:
    found = assert_same_decision(ranks, members)
    event(f"highest rank held: {int(found.rank.max())}")  # how far up the examples reach


@settings(max_examples=200, deadline=None)
@given(ranks=PLANS, members=forests(), data=st.data())
def test_a_team_cut_out_of_a_tree_is_decided_as_its_own(
    ranks: tuple[Rank, ...], members: list[MemberVolume], data: st.DataObject
) -> None:
    # The team of one member: that member and everyone below them, the member a root.
    head = data.draw(st.sampled_from(members)).member_id
    inside = {head}
    for member in members:  # sponsors come before their recruits
        if member.sponsor_id in inside:
            inside.add(member.member_id)
    assert_same_decision(ranks, [m for m in members if m.member_id in inside])


def test_a_long_chain_where_each_rank_waits_on_the_one_below() -> None:
    # 33,000 members, each the only recruit of the last (deeper than 16 bits of depth
    # hold, so sponsors are found without the radix sort), every one with 100 of volume:
    # "Base" needs PV 100, "Up" a leg holding "Base" or higher. Everyone but the last
    # member has such a leg (Up); the last has none (Base). Organization volume of the
    # first: 33,000 x 100 = 3,300,000.
    ranks = (
        Rank("Base", min_personal_volume=D("100")),
        Rank("Up", min_legs=LegRule(1, rank=0)),
    )
    members = [
        MemberVolume(f"M{i}", None if i == 0 else f"M{i - 1}", True, D("100"))
        for i in range(33_000)
    ]
    team, _ = as_team(members)
    found = decide_team(ranks, team)
    assert found is not None
    assert found.rank.tolist() == [1] * 32_999 + [0]
    assert found.volume(found.organization[0]) == D("3300000")
    assert_same_decision(ranks, members)


def test_a_team_too_large_for_exact_integers_is_left_to_the_decimals() -> None:
    # A cap of 0.3333333333 x 1000.01 = 333.336666663333 has twelve places: the volume
    # is counted in units of 10**-12, and 62 bits hold about 4.61 million of volume at
    # that scale (2**62 = 4.61 x 10**18 units). Four members of 1,000,000 each (4 x 10**18
    # units) fit; five (5 x 10**18) do not, nor does one whose volume came from the
    # database as 2**62 units (too large to be read as a 64-bit integer).
    ranks = (
        Rank(
            "Capped",
            min_organization_volume=D("1000.01"),
            max_leg_share=D("0.3333333333"),
        ),
    )

    def team_of(size: int) -> list[MemberVolume]:
        return [
            MemberVolume(f"M{i}", None if i == 0 else "M0", True, D("1000000")) for i in range(size)
        ]

    fits, _ = as_team(team_of(4))
    found = decide_team(ranks, fits)
    assert found is not None
    assert found.scale == 12
    assert found.rank.tolist() == [0, 0, 0, 0]
    assert found.volume(found.organization[0]) == D("4000000")
    assert decide_team(ranks, as_team(team_of(5))[0]) is None
    plain = (Rank("Plain", min_personal_volume=D("1")),)  # scale 4
    huge, _ = as_team(team_of(2))
    huge.personal[1] = 2**62
    assert decide_team(plain, huge) is None
    huge.personal[1] = 2**62 - 1  # within one unit of the limit: the sum passes it
    assert decide_team(plain, huge) is None
    huge.personal[1] = 4 * 10**18  # 4 x 10**14 of volume: fits with the first member's
    assert decide_team(plain, huge) is not None
