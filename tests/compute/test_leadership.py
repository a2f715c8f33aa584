"""A close's leadership over arrays against the domain's Decimals: on random plans with
every reward (stair-step rates with equal steps, matching over up to three generations,
pool shares, advancement bonuses) and random programs (forests, chains, refunds larger
than sales, members earning on sales or owing reversals), the arrays decide the same
ranks, store the same figures and pay the same bonus lines, to the cent, in USD, JPY and
KWD; and where amounts outgrow the arrays' integers, they decline rather than round."""

import dataclasses
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.compute.leadership import nearest_flagged
from service.compute.ranks import VOLUME_PLACES
from service.domain.bonuses import BonusKind
from service.domain.leadership import decide_leadership
from service.domain.plan import Compression, Plan
from service.domain.ranks import MemberVolume, Rank
from service.services.leadership import Decision, from_arrays, from_decimals
from tests.compute.test_ranks import LADDER, as_team, forests, plans

D = Decimal

RATES = st.sampled_from([D("0"), D("0.01"), D("0.02"), D("0.025"), D("0.05"), D("0.1234")])


@st.composite
def rewarded(draw: st.DrawFn) -> tuple[Rank, ...]:
    """A plan of random requirements with every reward; differential rates never fall with
    rank (the plan's rule), often stay level."""
    ranks = draw(st.one_of(plans(), st.just(LADDER)))
    rate = D(0)
    found = []
    for rank in ranks:
        rate += draw(st.sampled_from([D(0), D(0), D("0.01"), D("0.015"), D("0.05")]))
        found.append(
            dataclasses.replace(
                rank,
                differential_rate=draw(st.sampled_from([None, rate])) if rate else None,
                matching_rates=tuple(draw(st.lists(RATES, max_size=3))),
                pool_shares=draw(st.sampled_from([None, 1, 2, 3])),
                advancement_bonus=draw(st.sampled_from([None, D("100"), D("0.5")])),
            )
        )
    return tuple(found)


def plan_of(ranks: tuple[Rank, ...], pool: Decimal | None) -> Plan:
    return Plan(
        categories=(),
        compression=Compression.NONE,
        activity=None,
        max_payout_ratio=None,
        ranks=ranks,
        leadership_pool_rate=pool,
    )


def earnings(data: st.DataObject, members: Sequence[MemberVolume]) -> dict[str, Decimal]:
    found = {}
    for member in members:
        if data.draw(st.integers(min_value=0, max_value=3)):
            units = data.draw(st.integers(min_value=-50_0000, max_value=400_0000))
            found[member.member_id] = D(units).scaleb(-VOLUME_PLACES)
    return found


def summary(decision: Decision) -> tuple[object, ...]:
    """What a close writes and answers; the arrays' rank rows and bonus rows are made from
    the whole units the close writes, so comparing them compares those units too."""
    rows = {row.member_id: row for row in decision.rank_rows()}
    return (
        decision.ranked,
        decision.achieved,
        Counter(decision.bonus_rows),
        decision.bonuses,
        sorted(decision.advanced),
        rows,
    )


def both(
    ranks: tuple[Rank, ...],
    members: list[MemberVolume],
    earned: dict[str, Decimal],
    *,
    currency: str,
    pool: Decimal | None = D("0.01"),
    achieved_before: dict[str, int] | None = None,
    advanced_before: dict[str, set[str]] | None = None,
) -> tuple[Decision | None, Decision]:
    plan = plan_of(ranks, pool)
    before = achieved_before or {}
    advanced = advanced_before or {}
    net = sum((m.personal_volume for m in members), D(0))
    expected = from_decimals(
        plan,
        decide_leadership(
            plan,
            members,
            earned_on_sales=earned,
            achieved_before=before,
            net_volume=net,
            currency=currency,
            advanced_before=advanced,
        ),
    )
    team, ids = as_team(members)
    position = {member: i for i, member in enumerate(ids)}
    labels = np.array([int(team.lo[position[m]]) for m in earned], dtype=np.int64)
    units = np.array([int(v.scaleb(VOLUME_PLACES)) for v in earned.values()], dtype=np.int64)
    found = from_arrays(
        plan,
        team,
        ids,
        earned_labels=labels,
        earned_units=units,
        achieved_before=before,
        advanced_before=advanced,
        net_volume=net,
        currency=currency,
    )
    return found, expected


@settings(max_examples=300, deadline=None)
@given(
    ranks=rewarded(),
    data=st.data(),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
)
def test_the_arrays_pay_what_the_decimals_pay(
    ranks: tuple[Rank, ...], data: st.DataObject, currency: str
) -> None:
    members = data.draw(forests())
    earned = earnings(data, members)
    ids = [m.member_id for m in members]
    achieved = {
        m: data.draw(st.integers(0, len(ranks) - 1)) for m in ids if data.draw(st.booleans())
    }
    advanced = {m: {ranks[0].name} for m in ids if data.draw(st.booleans())}
    found, expected = both(
        ranks,
        members,
        earned,
        currency=currency,
        achieved_before=achieved,
        advanced_before=advanced,
    )
    assert found is not None
    assert summary(found) == summary(expected)


def test_a_stair_step_in_one_leg_pays_each_difference_once() -> None:
    """M0 <- M1 <- M2 <- M3, M3 sells 1000: M3 holds 1 % (Bronze), M2 nothing, M1 3 %
    (Gold), M0 2 % (Silver, passed). M3 earns 1000 x 0.01 = 10.00 at level 0, M1
    1000 x (0.03 - 0.01) = 20.00 at level 2; M0, below M1's rate, earns none."""
    ranks = (
        Rank("Bronze", min_personal_volume=D("1000"), differential_rate=D("0.01")),
        Rank("Silver", min_personal_volume=D("50"), max_leg_share=None,
             differential_rate=D("0.02")),
        Rank("Gold", min_personal_volume=D("60"), differential_rate=D("0.03")),
    )  # fmt: skip
    members = [
        MemberVolume("M0", None, True, D("50")),  # Silver
        MemberVolume("M1", "M0", True, D("60")),  # Gold
        MemberVolume("M2", "M1", True, D("0")),
        MemberVolume("M3", "M2", True, D("1000")),  # Gold by volume: 1000 >= 60
    ]
    found, expected = both(ranks, members, {}, currency="USD", pool=None)
    assert found is not None
    differential = sorted(
        (row.earner_id, row.source_member_id, row.level, row.rate, row.amount)
        for row in found.bonus_rows
        if row.bonus == BonusKind.DIFFERENTIAL
    )
    # M3 is Gold (3 %), so the whole 3 % of its 1000 is its own; M1 (Gold) and M0
    # (Silver) earn nothing on it. M1's own 60 pays M1 3 % = 1.80; M0's 50 pays 2 % = 1.00.
    assert differential == [
        ("M0", "M0", 0, D("0.02"), D("1.00")),
        ("M1", "M1", 0, D("0.03"), D("1.80")),
        ("M3", "M3", 0, D("0.03"), D("30.00")),
    ]
    assert summary(found) == summary(expected)


def test_amounts_too_large_for_the_integers_are_left_to_the_decimals() -> None:
    ranks = (Rank("Bronze", min_personal_volume=D("1"), differential_rate=D("0.1234567891")),)
    members = [
        MemberVolume("M0", None, True, D("900000000000")),  # x 10**4 units x 10**10 rate
        MemberVolume("M1", "M0", True, D("5")),
    ]
    found, expected = both(ranks, members, {}, currency="USD")
    assert found is None
    assert expected.ranked == {"M0": 0, "M1": 0}


@pytest.mark.parametrize(
    ("sponsor", "flagged", "nearest"),
    [
        ([-1, 0, 1, 2], [False, True, False, False], [-1, 1, 1, 1]),
        ([-1, 0, 0, 2, -1], [True, False, False, True, False], [0, 0, 0, 3, -1]),
        ([-1], [False], [-1]),
    ],
)
def test_nearest_flagged_member_on_the_way_up(
    sponsor: list[int], flagged: list[bool], nearest: list[int]
) -> None:
    found = nearest_flagged(np.array(sponsor, dtype=np.int64), np.array(flagged, dtype=np.bool_))
    assert found.tolist() == nearest


def test_nearest_flagged_on_a_deep_chain() -> None:
    """A chain of 100,000 with every 1000th member flagged: each member's nearest is the
    flagged one at or above them, found in about 17 rounds of pointer jumping."""
    count = 100_000
    sponsor = np.arange(-1, count - 1, dtype=np.int64)
    flagged = np.arange(count) % 1000 == 999
    found = nearest_flagged(sponsor, flagged)
    expected = np.where(np.arange(count) >= 999, (np.arange(count) + 1) // 1000 * 1000 - 1, -1)
    assert found.tolist() == expected.tolist()
