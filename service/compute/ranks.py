"""Paid-as ranks of a whole team at once: `service.domain.ranks.decide` over arrays.

The team comes in depth-first order (by tree label), so each member's team is a run of
positions and its organization volume a difference of two prefix sums. What a member's
requirements read of their legs is added up per sponsor. Legs qualified by rank depend on
the ranks below, so the ranks are found by iterating from "nobody holds a rank": each
round decides every member from the ranks of the last, a member's rank only ever rises
(every requirement asks for at least some figure), and the round that changes nothing
holds the ranks that deciding from the deepest members up gives (a member's rank depends
only on those strictly below them). For plans whose ranks build on the one below, that is
one round per rank.

Volumes are integers in units of 10**-scale, chosen so that every threshold and every
leg cap of the plan is a whole number of units; a team whose volume does not fit 62 bits
at that scale is not decided here (None), and the caller decides it with Decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from service.domain.money import EXACT
from service.domain.ranks import Rank

__all__ = ["VOLUME_PLACES", "Team", "TeamRanks", "decide_team", "from_units"]

VOLUME_PLACES = 4
"""The places of a booked volume (sales store volume with four): `Team.personal` is in
units of 10**-VOLUME_PLACES."""


def from_units(units: int, places: int) -> Decimal:
    """The Decimal that `units` whole units of 10**-places stand for, with `places` decimals
    (zero included: 0 units at 4 places is 0.0000)."""
    return Decimal(units).scaleb(-places)


_LIMIT = 2**62

Ints = NDArray[np.int64]
Flags = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Team:
    """A team as the rank decision reads it, one entry per member in depth-first order
    (ascending `lo`): tree labels (member D is below M exactly when M.lo < D.lo < M.hi),
    depth, active at the close, personal volume booked in the period in units of
    10**-VOLUME_PLACES. A member whose sponsor is not in the team is one of its roots."""

    lo: Ints
    hi: Ints
    depth: Ints
    active: Flags
    personal: Ints


@dataclass(frozen=True, slots=True)
class TeamRanks:
    """Every member's figures and paid-as rank, by position in the team: `sponsor` (-1: a
    root of the team), organization volume in units of 10**-scale, active recruits,
    paid-as rank and the best rank held by the member or anyone below them (indexes into
    the plan's ranks, -1: none)."""

    scale: int
    sponsor: Ints
    organization: Ints
    active_recruits: Ints
    rank: Ints
    best: Ints

    def volume(self, units: int | np.int64) -> Decimal:
        """A volume of this result as the Decimal it stands for."""
        return from_units(int(units), self.scale)

    def rank_at(self, position: int | np.int64) -> int | None:
        """The paid-as rank of the member at `position` (None: no rank)."""
        return _index(self.rank[position])

    def best_at(self, position: int | np.int64) -> int | None:
        """The best rank held by the member at `position` or anyone below (None: none)."""
        return _index(self.best[position])


def _index(found: np.int64) -> int | None:
    return None if found < 0 else int(found)


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _caps(ranks: Sequence[Rank]) -> list[Decimal | None]:
    return [
        EXACT.multiply(rank.max_leg_share, rank.min_organization_volume)
        if rank.max_leg_share is not None and rank.min_organization_volume is not None
        else None
        for rank in ranks
    ]


def _figures(ranks: Sequence[Rank], caps: list[Decimal | None]) -> list[Decimal]:
    found: list[Decimal] = [cap for cap in caps if cap is not None]
    for rank in ranks:
        found.extend(
            value
            for value in (rank.min_personal_volume, rank.min_organization_volume)
            if value is not None
        )
        if rank.min_legs is not None and rank.min_legs.volume is not None:
            found.append(rank.min_legs.volume)
    return found


def _sponsors(depth: Ints) -> Ints:
    """Each member's sponsor: in depth-first order, the nearest member before them one
    level up (-1: none in the team). Members sorted by depth, then position (a radix sort
    when depths fit 16 bits), are searched for the last one a level up before each."""
    count = len(depth)
    level = depth - depth.min() if count else depth
    keys16 = level.astype(np.int16) if count and level.max() < 2**15 else level
    order = np.argsort(keys16, kind="stable")
    by_level = level[order]
    keys = by_level * count + order
    found = np.searchsorted(keys, (by_level - 1) * count + order) - 1
    candidate = keys[np.maximum(found, 0)]
    held = (found >= 0) & (candidate // count == by_level - 1)
    sponsor = np.empty(count, dtype=np.int64)
    sponsor[order] = np.where(held, candidate % count, -1)
    return sponsor


def decide_team(ranks: Sequence[Rank], team: Team) -> TeamRanks | None:
    """Every member's paid-as rank as `service.domain.ranks.decide` decides it, or None
    when the team's volume cannot be held exactly in 62-bit integers at a scale that holds
    the plan's thresholds."""
    caps = _caps(ranks)
    thresholds = _figures(ranks, caps)
    scale = max([VOLUME_PLACES, *(_places(value) for value in thresholds)])
    factor = 10 ** (scale - VOLUME_PLACES)
    if any(abs(value) * 10**scale >= _LIMIT for value in thresholds):
        return None
    if len(team.personal):
        # Summed as floats, which cannot wrap: their error is far below the margin kept.
        total = float(np.abs(team.personal.astype(np.float64)).sum())
        if int(np.abs(team.personal).max()) >= _LIMIT or total * factor >= _LIMIT * 0.999:
            return None

    def units(value: Decimal) -> int:
        return int(value.scaleb(scale))

    count = len(team.lo)
    personal = team.personal * factor
    end = np.searchsorted(team.lo, team.hi).astype(np.int64)
    running = np.concatenate(([0], np.cumsum(personal, dtype=np.int64)))
    organization = running[end] - running[:-1]
    sponsor = _sponsors(team.depth)
    recruits = np.nonzero(sponsor >= 0)[0]
    above = sponsor[recruits]

    def per_sponsor(flags: Flags) -> Ints:
        """How many of each member's recruits the flags (by position) mark."""
        return np.bincount(above[flags[recruits]], minlength=count).astype(np.int64)

    active_recruits = per_sponsor(team.active & (personal > 0))

    # What each rank requires that does not depend on the ranks below.
    fixed: list[Flags] = []
    for rank, cap in zip(ranks, caps, strict=True):
        holds = team.active.copy()
        if rank.min_personal_volume is not None:
            holds &= personal >= units(rank.min_personal_volume)
        if rank.min_active_recruits is not None:
            holds &= active_recruits >= rank.min_active_recruits
        if rank.min_organization_volume is not None:
            holds &= organization >= units(rank.min_organization_volume)
            if cap is not None:
                counted = personal.copy()
                np.add.at(counted, above, np.minimum(organization[recruits], units(cap)))
                holds &= counted >= units(rank.min_organization_volume)
        legs = rank.min_legs
        if legs is not None and legs.volume is not None:
            holds &= per_sponsor(organization >= units(legs.volume)) >= legs.count
        fixed.append(holds)

    def holding(rank_of: Ints, lowest: int) -> Flags:
        """Whether each member's team (the member included) holds a rank of at least
        `lowest`."""
        marked = np.concatenate(([0], np.cumsum(rank_of >= lowest, dtype=np.int64)))
        result: Flags = (marked[end] - marked[:-1]) > 0
        return result

    rank_of: Ints = np.full(count, -1, dtype=np.int64)
    while True:
        decided: Ints = np.full(count, -1, dtype=np.int64)
        teams: dict[int, Flags] = {}
        for k, rank in enumerate(ranks):
            holds = fixed[k]
            legs = rank.min_legs
            if legs is not None and legs.rank is not None:
                if legs.rank not in teams:
                    teams[legs.rank] = holding(rank_of, legs.rank)
                holds = holds & (per_sponsor(teams[legs.rank]) >= legs.count)
            decided = np.where(holds, k, decided)
        if np.array_equal(decided, rank_of):
            break
        rank_of = decided

    best = np.full(count, -1, dtype=np.int64)
    for k in range(len(ranks)):
        best = np.where(holding(rank_of, k), k, best)
    return TeamRanks(
        scale=scale,
        sponsor=sponsor,
        organization=organization,
        active_recruits=active_recruits,
        rank=rank_of,
        best=best,
    )
