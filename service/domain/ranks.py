"""Ranks: what each rank requires, and every member's paid-as rank in a period.

A member's paid-as rank is the highest rank of the plan all of whose requirements hold
for them in the period. Legs are qualified by the ranks of the same period, so ranks are
decided from the deepest members up: a member's legs are decided before the member.

Every requirement only ever asks for "at least" some figure, and each figure grows with
volume (a leg's rank too, by the same argument one level down), so adding volume never
lowers a rank; the decision reads a member's team as a set, so the order in which members
are given changes nothing.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Protocol

from service.domain.money import EXACT

__all__ = [
    "Check",
    "Decided",
    "Figures",
    "Leg",
    "LegRule",
    "MemberVolume",
    "Progress",
    "Rank",
    "RankProgress",
    "Ranked",
    "Requirement",
    "Standing",
    "checks",
    "counted_organization_volume",
    "decide",
    "decide_ranks",
    "progress",
    "rank_index",
    "rank_name",
]


class Requirement(StrEnum):
    """The requirements a rank may set, as the plan and the progress answer name them."""

    PERSONAL_VOLUME = "min_personal_volume"
    ORGANIZATION_VOLUME = "min_organization_volume"
    LEGS = "min_legs"
    ACTIVE_RECRUITS = "min_active_recruits"
    ACTIVE = "active"
    """Not set by a rank: only a member active at the close holds one (required 1, actual 0
    for a member who is not)."""


@dataclass(frozen=True, slots=True)
class LegRule:
    """At least `count` legs, each holding a member paid as `rank` or higher (`rank` is
    the index of that rank in the plan), or each of at least `volume`."""

    count: int
    rank: int | None = None
    volume: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Rank:
    """One rank of the plan: its requirements (None: not required) and its rewards."""

    name: str
    min_personal_volume: Decimal | None = None
    min_organization_volume: Decimal | None = None
    max_leg_share: Decimal | None = None
    """With `min_organization_volume`: each leg counts for at most this share of it."""
    min_legs: LegRule | None = None
    min_active_recruits: int | None = None
    unlocked_levels: int | None = None
    differential_rate: Decimal | None = None
    matching_rates: tuple[Decimal, ...] = ()
    pool_shares: int | None = None
    advancement_bonus: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MemberVolume:
    """A member as the rank decision reads them: where they sit, whether they were active
    at the close, and their personal volume booked in the period (negative when refunds
    booked in it exceed sales)."""

    member_id: str
    sponsor_id: str | None
    active: bool
    personal_volume: Decimal


@dataclass(frozen=True, slots=True)
class Leg:
    """A direct recruit with everyone below them: its volume is the recruit's organization
    volume; `best_rank` is the highest paid-as rank held by anyone in it (None: nobody)."""

    member_id: str
    volume: Decimal
    best_rank: int | None


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's figures in the period and the paid-as rank they decide (an index into the
    plan's ranks, None: no rank). `legs` are sorted by recruit id; `active_recruits` counts
    the direct recruits active at the close with personal volume above zero."""

    member_id: str
    active: bool
    personal_volume: Decimal
    organization_volume: Decimal
    legs: tuple[Leg, ...]
    active_recruits: int
    rank: int | None

    @property
    def best_rank(self) -> int | None:
        """The highest paid-as rank held by the member or anyone below them."""
        return _highest(self.rank, *(leg.best_rank for leg in self.legs))


class Ranked(Protocol):
    """A member as the bonuses read them: personal volume and paid-as rank in the period."""

    @property
    def member_id(self) -> str: ...
    @property
    def personal_volume(self) -> Decimal: ...
    @property
    def rank(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Figures:
    """A member's figures in the period and their paid-as rank, without their legs: what a
    close stores and pays bonuses on. `best_rank` is the highest rank held by the member or
    anyone below them."""

    member_id: str
    active: bool
    personal_volume: Decimal
    organization_volume: Decimal
    active_recruits: int
    rank: int | None
    best_rank: int | None


@dataclass(frozen=True, slots=True)
class Check:
    """One requirement of a rank, against a member's figures."""

    requirement: Requirement
    required: Decimal | int
    actual: Decimal | int
    met: bool


@dataclass(frozen=True, slots=True)
class RankProgress:
    """One rank against a member's figures: each requirement it sets, checked, and whether
    the member qualifies for it (every check met, and the member active)."""

    name: str
    qualified: bool
    requirements: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a member stands against every rank of the plan (lowest first), and what they
    still miss for the next rank above their paid-as rank (None: they hold the highest)."""

    rank: str | None
    ranks: tuple[RankProgress, ...]
    next_rank: str | None
    missing: tuple[Check, ...]


def rank_index(ranks: Sequence[Rank], name: str | None) -> int | None:
    """The position of the rank of that name (ranks are lowest first), or None (no name,
    or one these ranks do not have)."""
    for index, rank in enumerate(ranks):
        if rank.name == name:
            return index
    return None


def rank_name(ranks: Sequence[Rank], index: int | None) -> str | None:
    """The name of the rank at that position (None: no rank)."""
    return None if index is None else ranks[index].name


def _highest(*indexes: int | None) -> int | None:
    held = [index for index in indexes if index is not None]
    return max(held) if held else None


def counted_organization_volume(rank: Rank, standing: Standing) -> Decimal:
    """The organization volume as `rank` counts it: with `max_leg_share`, each leg for at
    most that share of `min_organization_volume` (the member's own volume in full)."""
    if rank.max_leg_share is None or rank.min_organization_volume is None:
        return standing.organization_volume
    cap = EXACT.multiply(rank.max_leg_share, rank.min_organization_volume)
    total = standing.personal_volume
    for leg in standing.legs:
        total = EXACT.add(total, min(leg.volume, cap))
    return total


def _qualified_legs(rule: LegRule, legs: Iterable[Leg]) -> int:
    if rule.rank is not None:
        wanted = rule.rank
        return sum(1 for leg in legs if leg.best_rank is not None and leg.best_rank >= wanted)
    assert rule.volume is not None
    floor = rule.volume
    return sum(1 for leg in legs if leg.volume >= floor)


def checks(rank: Rank, standing: Standing) -> tuple[Check, ...]:
    """Each requirement `rank` sets, with the figure required and the member's own, in the
    order the plan names them. The legs' ranks are those of the same period."""
    found: list[Check] = []
    if rank.min_personal_volume is not None:
        found.append(
            Check(
                Requirement.PERSONAL_VOLUME,
                rank.min_personal_volume,
                standing.personal_volume,
                standing.personal_volume >= rank.min_personal_volume,
            )
        )
    if rank.min_organization_volume is not None:
        counted = counted_organization_volume(rank, standing)
        found.append(
            Check(
                Requirement.ORGANIZATION_VOLUME,
                rank.min_organization_volume,
                counted,
                counted >= rank.min_organization_volume,
            )
        )
    if rank.min_legs is not None:
        needed = rank.min_legs.count
        qualified = _qualified_legs(rank.min_legs, standing.legs)
        found.append(Check(Requirement.LEGS, needed, qualified, qualified >= needed))
    if rank.min_active_recruits is not None:
        found.append(
            Check(
                Requirement.ACTIVE_RECRUITS,
                rank.min_active_recruits,
                standing.active_recruits,
                standing.active_recruits >= rank.min_active_recruits,
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A rank's requirements as the single pass tests them."""

    personal: Decimal | None
    organization: Decimal | None
    cap: Decimal | None  # max_leg_share x min_organization_volume
    legs: LegRule | None
    recruits: int | None


def _rule(rank: Rank) -> _Rule:
    cap = None
    if rank.max_leg_share is not None and rank.min_organization_volume is not None:
        cap = EXACT.multiply(rank.max_leg_share, rank.min_organization_volume)
    return _Rule(
        rank.min_personal_volume,
        rank.min_organization_volume,
        cap,
        rank.min_legs,
        rank.min_active_recruits,
    )


@dataclass(frozen=True, slots=True)
class Decided:
    """Every member's figures and paid-as rank in a period, as lists by position:
    `member_ids` in an order where every sponsor comes before their recruits, `sponsor`
    the position of each member's sponsor (-1: a root). `best` is the highest rank held by
    the member or anyone below them."""

    member_ids: list[str]
    sponsor: list[int]
    active: list[bool]
    personal: list[Decimal]
    organization: list[Decimal]
    active_recruits: list[int]
    rank: list[int | None]
    best: list[int | None]

    def figures(self) -> dict[str, Figures]:
        """Every member's figures, by member id (no legs: a close needs none)."""
        return {
            member_id: Figures(member_id, active, personal, organization, recruits, rank, best)
            for member_id, active, personal, organization, recruits, rank, best in zip(
                self.member_ids,
                self.active,
                self.personal,
                self.organization,
                self.active_recruits,
                self.rank,
                self.best,
                strict=True,
            )
        }

    def standings(self, only: Iterable[int] | None = None) -> dict[str, Standing]:
        """The standings, by member id, of every member (or of the positions in `only`),
        legs sorted by recruit id."""
        wanted = range(len(self.member_ids)) if only is None else only
        chosen = set(wanted)
        recruits: dict[int, list[int]] = {}
        for position, sponsor in enumerate(self.sponsor):
            if sponsor in chosen:
                recruits.setdefault(sponsor, []).append(position)
        ids, found = self.member_ids, {}
        for i in wanted:
            below = sorted(recruits.get(i, ()), key=ids.__getitem__)
            found[ids[i]] = Standing(
                member_id=ids[i],
                active=self.active[i],
                personal_volume=self.personal[i],
                organization_volume=self.organization[i],
                legs=tuple(Leg(ids[j], self.organization[j], self.best[j]) for j in below),
                active_recruits=self.active_recruits[i],
                rank=self.rank[i],
            )
        return found


def decide(ranks: Sequence[Rank], members: Iterable[MemberVolume]) -> Decided:
    """Every member's figures and paid-as rank in the period, in one pass from the deepest
    members up: when a member is decided, all their recruits are, and what the member's
    requirements read of their legs (organization volume, legs counted up to each rank's
    cap, legs qualified for each rank's `min_legs`, active recruits, the best rank below)
    has been added up as each recruit was decided. Work: members x ranks.

    `members` is the whole tree as it stands at the close, in any order: a member whose
    sponsor is not among them is a root. A cycle of sponsors is a ValueError (the genealogy
    never holds one). Only an active member holds a rank: the highest whose requirements
    all hold."""
    listed = list(members)
    index = {member.member_id: i for i, member in enumerate(listed)}
    if len(index) != len(listed):
        raise ValueError("a member is given twice")
    recruits: list[list[int]] = [[] for _ in listed]
    order: list[int] = []
    for i, member in enumerate(listed):
        sponsor = None if member.sponsor_id is None else index.get(member.sponsor_id)
        if sponsor is None:
            order.append(i)
        else:
            recruits[sponsor].append(i)
    position = 0
    while position < len(order):  # breadth first: every sponsor before their recruits
        order.extend(recruits[order[position]])
        position += 1
    if len(order) != len(listed):
        raise ValueError("the sponsors form a cycle")

    count = len(listed)
    rules = [_rule(rank) for rank in ranks]
    highest_first = list(enumerate(rules))[::-1]
    capped = [(k, rule.cap) for k, rule in enumerate(rules) if rule.cap is not None]
    by_rank = [
        (k, rule.legs.rank)
        for k, rule in enumerate(rules)
        if rule.legs is not None and rule.legs.rank is not None
    ]
    by_volume = [
        (k, rule.legs.volume)
        for k, rule in enumerate(rules)
        if rule.legs is not None and rule.legs.volume is not None
    ]
    zero = Decimal(0)
    team = [zero] * count  # the organization volume of the recruits decided so far
    counted = {k: [zero] * count for k, _ in capped}  # their legs, each up to the rank's cap
    qualified = {k: [0] * count for k, _ in (*by_rank, *by_volume)}
    recruited_active = [0] * count
    best_below: list[int | None] = [None] * count
    organization: list[Decimal] = [zero] * count
    rank_of: list[int | None] = [None] * count
    best: list[int | None] = [None] * count
    sponsor_of = [-1] * count
    for i in order:
        for j in recruits[i]:
            sponsor_of[j] = i

    with localcontext(EXACT):
        for i in reversed(order):  # every recruit decided before their sponsor
            member = listed[i]
            personal = member.personal_volume
            ov = personal + team[i]
            rank = None
            if member.active:
                for k, rule in highest_first:
                    if rule.personal is not None and personal < rule.personal:
                        continue
                    if rule.recruits is not None and recruited_active[i] < rule.recruits:
                        continue
                    if rule.legs is not None and qualified[k][i] < rule.legs.count:
                        continue
                    if rule.organization is not None and (
                        ov < rule.organization
                        or (rule.cap is not None and personal + counted[k][i] < rule.organization)
                    ):
                        continue
                    rank = k
                    break
            below = best_below[i]
            top = rank if below is None or (rank is not None and rank > below) else below
            organization[i], rank_of[i], best[i] = ov, rank, top
            s = sponsor_of[i]
            if s < 0:
                continue
            team[s] += ov
            if member.active and personal > 0:
                recruited_active[s] += 1
            for k, cap in capped:
                counted[k][s] += ov if ov < cap else cap
            if top is not None:
                for k, wanted in by_rank:
                    if top >= wanted:
                        qualified[k][s] += 1
                above = best_below[s]
                if above is None or top > above:
                    best_below[s] = top
            for k, floor in by_volume:
                if ov >= floor:
                    qualified[k][s] += 1

    return Decided(
        member_ids=[m.member_id for m in listed],
        sponsor=sponsor_of,
        active=[m.active for m in listed],
        personal=[m.personal_volume for m in listed],
        organization=organization,
        active_recruits=recruited_active,
        rank=rank_of,
        best=best,
    )


def decide_ranks(ranks: Sequence[Rank], members: Iterable[MemberVolume]) -> dict[str, Standing]:
    """Every member's standing in the period (figures, legs and paid-as rank), by member id:
    `decide`, with each member's legs. See `decide` for what `members` is."""
    return decide(ranks, members).standings()


def progress(ranks: Sequence[Rank], standing: Standing) -> Progress:
    """A member's progress towards each rank, from their standing in the period (as
    `decide_ranks` gave it: its paid-as rank is the highest rank qualified for). The next
    rank is the one just above the paid-as rank (the lowest, without one); `missing` is its
    unmet requirements, and `active` when the member is not active."""
    inactive = () if standing.active else (Check(Requirement.ACTIVE, 1, 0, False),)
    found = []
    for rank in ranks:
        requirements = checks(rank, standing)
        qualified = standing.active and all(check.met for check in requirements)
        found.append(RankProgress(rank.name, qualified, requirements))
    held = None if standing.rank is None else ranks[standing.rank].name
    following = 0 if standing.rank is None else standing.rank + 1
    if following >= len(ranks):
        return Progress(held, tuple(found), None, ())
    missing = (*inactive, *(check for check in found[following].requirements if not check.met))
    return Progress(held, tuple(found), ranks[following].name, missing)
