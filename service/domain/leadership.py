"""A period's leadership figures, decided at its close: every member's paid-as rank, the
bonus lines those ranks pay, and each member's achieved rank after the period.

One pure function over what the close loads (the tree with each member's personal volume,
what each member earned on sales, the ranks achieved before, the program's net volume);
the rules are those of `service.domain.ranks` and `service.domain.bonuses`.
"""

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from service.domain.bonuses import (
    BonusKind,
    BonusLine,
    advancement_bonuses,
    differential_bonuses,
    matching_bonuses,
    pool_bonuses,
)
from service.domain.plan import Plan
from service.domain.ranks import Figures, MemberVolume, decide

__all__ = ["Leadership", "bonus_totals", "decide_leadership"]


@dataclass(frozen=True, slots=True)
class Leadership:
    """`standings` by member id, with each member's `sponsors` entry as the decision read
    it; `bonus_lines` differential, matching, pool and advancement, in that order;
    `achieved` each member's achieved rank (an index) after the period, for every member
    who holds one."""

    standings: dict[str, Figures]
    sponsors: dict[str, str | None]
    bonus_lines: list[BonusLine]
    achieved: dict[str, int]


def decide_leadership(
    plan: Plan,
    members: Iterable[MemberVolume],
    *,
    earned_on_sales: Mapping[str, Decimal],
    achieved_before: Mapping[str, int | None],
    net_volume: Decimal,
    currency: str,
    advanced_before: Mapping[str, Collection[str]] | None = None,
) -> Leadership:
    """The period's ranks and bonuses under `plan` (the version in force at the period's
    last instant). `earned_on_sales` is each member's personal and override lines of the
    period net of the reversals booked in it; the matching bonus is paid on that plus the
    member's differential bonus. `achieved_before` is each member's achieved rank before
    the period (absent or None: never ranked, or a rank this plan version does not name);
    `advanced_before` the ranks whose advancement bonus each member was paid before."""
    ranks = plan.ranks
    listed = list(members)
    standings = decide(ranks, listed).figures()
    sponsors = {member.member_id: member.sponsor_id for member in listed}
    differential = differential_bonuses(ranks, standings, sponsors, currency)
    earned = dict(earned_on_sales)
    for line in differential:
        earned[line.earner_id] = earned.get(line.earner_id, Decimal(0)) + line.amount
    matching = matching_bonuses(ranks, standings, sponsors, earned, currency)
    pool = pool_bonuses(ranks, standings.values(), plan.leadership_pool_rate, net_volume, currency)
    advancement = advancement_bonuses(ranks, standings.values(), achieved_before, advanced_before)
    achieved: dict[str, int] = {}
    for member_id, before in achieved_before.items():
        if before is not None:
            achieved[member_id] = before
    for member_id, standing in standings.items():
        if standing.rank is not None:
            achieved[member_id] = max(standing.rank, achieved.get(member_id, standing.rank))
    return Leadership(
        standings=standings,
        sponsors=sponsors,
        bonus_lines=[*differential, *matching, *pool, *advancement],
        achieved=achieved,
    )


def bonus_totals(lines: Iterable[BonusLine]) -> dict[str, Decimal]:
    """The lines added up by kind of bonus, in the order of `BonusKind`; a kind without a
    line is left out."""
    totals: dict[BonusKind, Decimal] = {}
    for line in lines:
        totals[line.bonus] = totals.get(line.bonus, Decimal(0)) + line.amount
    return {kind.value: totals[kind] for kind in BonusKind if kind in totals}
