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
from decimal import Decimal
from enum import StrEnum

from service.domain.money import EXACT

__all__ = [
    "Check",
    "Leg",
    "LegRule",
    "MemberVolume",
    "Progress",
    "Rank",
    "RankProgress",
    "Requirement",
    "Standing",
    "checks",
    "counted_organization_volume",
    "decide_ranks",
    "progress",
    "rank_index",
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


def rank_index(ranks: Sequence[Rank], name: str) -> int | None:
    """The position of the rank of that name (ranks are lowest first), or None."""
    for index, rank in enumerate(ranks):
        if rank.name == name:
            return index
    return None


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


def _holds(
    rank: Rank,
    personal: Decimal,
    organization: Decimal,
    legs: tuple[Leg, ...],
    active_recruits: int,
) -> bool:
    """Whether every requirement of `rank` holds: what `checks` decides, without building
    the checks (the close asks it of every member and rank), cheapest test first. The
    counted organization volume is never above the organization volume, so the latter
    failing decides it."""
    if rank.min_personal_volume is not None and personal < rank.min_personal_volume:
        return False
    if rank.min_active_recruits is not None and active_recruits < rank.min_active_recruits:
        return False
    if rank.min_legs is not None and (
        len(legs) < rank.min_legs.count
        or _qualified_legs(rank.min_legs, legs) < rank.min_legs.count
    ):
        return False
    floor = rank.min_organization_volume
    if floor is not None:
        if organization < floor:
            return False
        if rank.max_leg_share is not None:
            cap = EXACT.multiply(rank.max_leg_share, floor)
            counted = personal
            for leg in legs:
                counted = EXACT.add(counted, leg.volume if leg.volume < cap else cap)
            if counted < floor:
                return False
    return True


def decide_ranks(ranks: Sequence[Rank], members: Iterable[MemberVolume]) -> dict[str, Standing]:
    """Every member's figures and paid-as rank in the period, by member id.

    `members` is the whole tree as it stands at the close, in any order: a member whose
    sponsor is not among them is a root. A cycle of sponsors is a ValueError (the genealogy
    never holds one). Only an active member holds a rank: the highest whose requirements
    all hold.
    """
    by_id = {member.member_id: member for member in members}
    recruits: dict[str, list[str]] = {}
    roots: list[str] = []
    for member in by_id.values():
        if member.sponsor_id is None or member.sponsor_id not in by_id:
            roots.append(member.member_id)
        else:
            recruits.setdefault(member.sponsor_id, []).append(member.member_id)
    order = roots
    position = 0
    while position < len(order):  # breadth first: every sponsor before their recruits
        order.extend(recruits.get(order[position], ()))
        position += 1
    if len(order) != len(by_id):
        raise ValueError("the sponsors form a cycle")

    highest_first = list(enumerate(ranks))[::-1]
    decided: dict[str, Standing] = {}
    best: dict[str, int | None] = {}
    no_legs: tuple[Leg, ...] = ()
    for member_id in reversed(order):  # every recruit decided before their sponsor
        member = by_id[member_id]
        personal = member.personal_volume
        organization = personal
        legs = no_legs
        active_recruits = 0
        best_rank: int | None = None
        own = recruits.get(member_id)
        if own:
            below = [decided[recruit] for recruit in sorted(own)]
            for r in below:
                organization = EXACT.add(organization, r.organization_volume)
                if r.active and r.personal_volume > 0:
                    active_recruits += 1
            legs = tuple(Leg(r.member_id, r.organization_volume, best[r.member_id]) for r in below)
            for leg in legs:
                if leg.best_rank is not None and (best_rank is None or leg.best_rank > best_rank):
                    best_rank = leg.best_rank
        rank = None
        if member.active:
            for index, candidate in highest_first:
                if _holds(candidate, personal, organization, legs, active_recruits):
                    rank = index
                    break
        if rank is not None and (best_rank is None or rank > best_rank):
            best_rank = rank
        best[member_id] = best_rank
        decided[member_id] = Standing(
            member_id=member_id,
            active=member.active,
            personal_volume=personal,
            organization_volume=organization,
            legs=legs,
            active_recruits=active_recruits,
            rank=rank,
        )
    return decided


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
