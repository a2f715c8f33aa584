"""The differential and matching bonuses of a whole program at once, over the arrays of
`service.compute.ranks`: the lines `service.domain.bonuses` writes, found without a Python
step per member.

Members are positions in depth-first order with each one's sponsor position (-1: a root)
and depth. The stair-step is split by the plan's distinct differential rates (tiers): the
part of a unit of volume between one tier and the next is paid to the nearest member at or
above the seller whose rate reaches that tier, so each member's line on a source is the
run of tiers first reached at them, and its rate the difference between their rate and the
tier below that run. The nearest member reaching a tier is found for everyone by pointer
jumping (each round doubles how far a pointer has climbed), so a tier costs a few passes
over the arrays however deep the tree. Matching climbs one generation per pass.

Amounts are exact: volumes and earnings are integers in units of 10**-VOLUME_PLACES, rates
integers at the plan's places, the product rounded half-even to the currency's minor unit
in integers. A product that could pass 63 bits is not computed here (None), and the caller
pays the period with Decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from service.compute.ranks import VOLUME_PLACES
from service.domain.ranks import Rank

__all__ = ["Lines", "differential_lines", "matching_lines", "nearest_flagged"]

Ints = NDArray[np.int64]
Flags = NDArray[np.bool_]

_LIMIT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Lines:
    """Bonus lines by position: who earns, on whose volume or earnings, the distance or
    generation, the rate (an index into `rates`) and the amount in units of
    10**-VOLUME_PLACES (never zero). `base` is in the same units."""

    earner: Ints
    source: Ints
    level: Ints
    base: Ints
    rate: Ints
    amount: Ints
    rates: tuple[Decimal, ...]

    def __len__(self) -> int:
        return len(self.earner)

    def earned(self, count: int) -> Ints:
        """What the lines pay each of `count` positions, in units."""
        total = np.zeros(count, dtype=np.int64)
        np.add.at(total, self.earner, self.amount)
        return total


def nearest_flagged(sponsor: Ints, flagged: Flags) -> Ints:
    """For every position, the nearest flagged member at or above it (itself included) on
    its way up the sponsor chain (-1: none)."""
    count = len(sponsor)
    sentinel = count  # stands for "above every root": found, and flagged nowhere
    jump = np.where(flagged, np.arange(count, dtype=np.int64), sponsor)
    jump = np.append(np.where(jump < 0, sentinel, jump), sentinel)
    found = np.append(flagged, True)
    while True:
        target = jump[:-1]
        climbing = ~found[target]
        if not climbing.any():
            break
        jump[:-1] = np.where(climbing, jump[target], target)
    nearest = jump[:-1]
    result: Ints = np.where(nearest == sentinel, -1, nearest)
    return result


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _rounded(products: Ints, divisor: int) -> Ints:
    """Non-negative products divided by `divisor`, rounded half-even."""
    if divisor == 1:
        return products
    quotient, remainder = np.divmod(products, divisor)
    twice = 2 * remainder
    up = (twice > divisor) | ((twice == divisor) & (quotient % 2 == 1))
    result: Ints = quotient + up
    return result


def _amounts(base: Ints, rate: Ints, rate_places: int, digits: int) -> Ints | None:
    """`base` (units of 10**-VOLUME_PLACES, positive) times `rate` (units of
    10**-rate_places, positive), rounded half-even to 10**-digits, in units of
    10**-VOLUME_PLACES; None when a product could pass 63 bits."""
    if len(base) == 0:
        return np.zeros(0, dtype=np.int64)
    if digits > VOLUME_PLACES or int(base.max()) * int(rate.max()) > _LIMIT:
        return None
    divisor = 10 ** (VOLUME_PLACES + rate_places - digits)
    if divisor < 1:
        return None
    result: Ints = _rounded(base * rate, divisor) * 10 ** (VOLUME_PLACES - digits)
    return result


def differential_lines(
    ranks: Sequence[Rank],
    *,
    sponsor: Ints,
    depth: Ints,
    rank: Ints,
    personal: Ints,
    digits: int,
) -> Lines | None:
    """The stair-step lines of every member with positive personal volume (`personal`, in
    units of 10**-VOLUME_PLACES) as `service.domain.bonuses.differential_bonuses` pays
    them, `rank` being each position's paid-as rank (-1: none); None when an amount cannot
    be computed exactly in 63 bits."""
    tiers = sorted({r.differential_rate for r in ranks if r.differential_rate})
    tier_of_rank = np.array(
        [0 if not r.differential_rate else tiers.index(r.differential_rate) + 1 for r in ranks]
        + [0],
        dtype=np.int64,
    )
    tier = tier_of_rank[rank]  # rank -1 reads the trailing 0
    sources = np.nonzero(personal > 0)[0].astype(np.int64)
    places = max([0, *(_places(t) for t in tiers)])
    tier_units = [0, *(int(t.scaleb(places)) for t in tiers)]
    found_earner, found_source, found_from = [], [], []
    previous = np.full(len(sources), -1, dtype=np.int64)
    for t in range(1, len(tiers) + 1):
        nearest = nearest_flagged(sponsor, tier >= t)[sources]
        new = (nearest >= 0) & (nearest != previous)
        found_earner.append(nearest[new])
        found_source.append(sources[new])
        found_from.append(np.full(int(new.sum()), t, dtype=np.int64))
        previous = nearest
    earner = np.concatenate([np.zeros(0, dtype=np.int64), *found_earner])
    source = np.concatenate([np.zeros(0, dtype=np.int64), *found_source])
    start = np.concatenate([np.zeros(0, dtype=np.int64), *found_from])
    top = tier[earner]
    units = np.array(tier_units, dtype=np.int64)
    difference = units[top] - units[start - 1]
    # A line's rate is told by the pair (tier its run starts at, earner's tier).
    width = len(tiers) + 1
    pairs, rate = np.unique(start * width + top, return_inverse=True)
    levels = [Decimal(0), *tiers]
    rates = tuple(levels[int(p % width)] - levels[int(p // width) - 1] for p in pairs)
    base = personal[source]
    amount = _amounts(base, difference, places, digits)
    if amount is None:
        return None
    paid = amount != 0
    return Lines(
        earner=earner[paid],
        source=source[paid],
        level=(depth[source] - depth[earner])[paid],
        base=base[paid],
        rate=rate.astype(np.int64)[paid],
        amount=amount[paid],
        rates=rates,
    )


def matching_lines(
    ranks: Sequence[Rank],
    *,
    sponsor: Ints,
    rank: Ints,
    earned: Ints,
    digits: int,
) -> Lines | None:
    """The matching lines as `service.domain.bonuses.matching_bonuses` pays them, `earned`
    being what each position earned in the period (personal, override and differential
    lines net of reversals, in units of 10**-VOLUME_PLACES); None when an amount cannot be
    computed exactly in 63 bits."""
    deepest = max((len(r.matching_rates) for r in ranks), default=0)
    empty = np.zeros(0, dtype=np.int64)
    if deepest == 0:
        return Lines(empty, empty, empty, empty, empty, empty, ())
    rates = sorted({rate for r in ranks for rate in r.matching_rates if rate})
    places = max([0, *(_places(rate) for rate in rates)])
    # table[k, g-1]: rank k's rate at generation g, as an index into `rates` (-1: none).
    table = np.full((len(ranks) + 1, deepest), -1, dtype=np.int64)
    for k, r in enumerate(ranks):
        for g, value in enumerate(r.matching_rates):
            if value:
                table[k, g] = rates.index(value)
    units = np.array([int(rate.scaleb(places)) for rate in rates] + [0], dtype=np.int64)
    sources = np.nonzero(earned > 0)[0].astype(np.int64)
    found: list[tuple[Ints, Ints, Ints, Ints]] = []
    above = sponsor[sources]
    for generation in range(1, deepest + 1):
        held = above >= 0
        index = np.full(len(sources), -1, dtype=np.int64)
        index[held] = table[rank[above[held]], generation - 1]
        paying = index >= 0
        found.append(
            (
                above[paying],
                sources[paying],
                np.full(int(paying.sum()), generation, dtype=np.int64),
                index[paying],
            )
        )
        above = np.where(held, sponsor[np.maximum(above, 0)], -1)
    earner = np.concatenate([empty, *(f[0] for f in found)])
    source = np.concatenate([empty, *(f[1] for f in found)])
    level = np.concatenate([empty, *(f[2] for f in found)])
    rate = np.concatenate([empty, *(f[3] for f in found)])
    base = earned[source]
    amount = _amounts(base, units[rate], places, digits)
    if amount is None:
        return None
    paid = amount != 0
    return Lines(
        earner=earner[paid],
        source=source[paid],
        level=level[paid],
        base=base[paid],
        rate=rate[paid],
        amount=amount[paid],
        rates=tuple(rates),
    )
