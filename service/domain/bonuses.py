"""Leadership bonuses of a period, decided at its close from the period's booked volume and
the paid-as ranks of that period (`service.domain.ranks`).

* differential (stair-step): a unit of personal volume pays, on its way up, exactly the
  highest differential rate held by its seller or anyone above, split by differences:
  each member whose rate is higher than every rate below them on the way earns the
  difference.
* matching: a rank's `matching_rates[g-1]` of what each member g sponsor generations
  below earned in the period (personal, override and differential lines, net of the
  reversals booked in it), when that is positive.
* pool: the pool rate of the program's net volume, shared by the pool shares of the ranks
  held; each share rounded down, so the lines never add up to more than the pool.
* advancement: once per member and rank, ever, for each rank with a bonus that the
  member's paid-as rank reaches or passes for the first time.

Every line is `base x rate` rounded half-even to the minor unit (the pool: rounded down).
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum

from service.domain.money import EXACT, floor_money, round_money
from service.domain.ranks import Rank, Ranked

__all__ = [
    "BonusKind",
    "BonusLine",
    "advancement_bonuses",
    "differential_bonuses",
    "matching_bonuses",
    "pool_bonuses",
]

ZERO = Decimal(0)
_POOL_RATE = Decimal(1).scaleb(-10)
"""A pool line's rate, shares / total shares, is cut to the ten places a line's rate keeps;
its amount is pool x shares / total shares rounded down, exactly."""


class BonusKind(StrEnum):
    DIFFERENTIAL = "differential"
    MATCHING = "matching"
    POOL = "pool"
    ADVANCEMENT = "advancement"


@dataclass(frozen=True, slots=True)
class BonusLine:
    """One bonus line, explained: whose volume or earnings it is paid on (`source_id`; the
    earner themself for pool and advancement), the distance or generation (`level`; 0 for
    pool and advancement), the base and the rate. For the pool, `base` is the pool and
    `rate` the earner's shares over all shares held cut to ten places (`shares` and
    `total_shares` give it exactly: the amount is pool x shares / total_shares rounded
    down); for advancement, `base` is the rank's bonus and `rate` 1. `rank` is the rank
    that earned it."""

    bonus: BonusKind
    earner_id: str
    source_id: str
    level: int
    base: Decimal
    rate: Decimal
    amount: Decimal
    rank: str
    shares: int | None = None
    total_shares: int | None = None


def _rate_of(ranks: Sequence[Rank], standing: Ranked | None) -> Decimal:
    if standing is None or standing.rank is None:
        return ZERO
    return ranks[standing.rank].differential_rate or ZERO


def differential_bonuses(
    ranks: Sequence[Rank],
    standings: Mapping[str, Ranked],
    sponsors: Mapping[str, str | None],
    currency: str,
) -> list[BonusLine]:
    """The stair-step lines: for every member with positive personal volume (the source),
    the members on the way up from the source (the source included, at level 0) whose
    differential rate is higher than every rate before them on the way; each earns the
    difference on the source's volume. Members are visited sponsors first, and each keeps
    only the steps above them (at most one per distinct rate), so the work is the tree's
    size times the number of ranks, however deep the tree."""
    order = _sponsors_first(sponsors)
    steps: dict[str, tuple[tuple[str, int, Decimal], ...]] = {}
    depth: dict[str, int] = {}
    lines: list[BonusLine] = []
    for member_id in order:
        sponsor = sponsors.get(member_id)
        above = steps.get(sponsor, ()) if sponsor is not None else ()
        depth[member_id] = depth[sponsor] + 1 if sponsor is not None and sponsor in depth else 0
        own = _rate_of(ranks, standings.get(member_id))
        mine = above  # every step above has a positive rate: none is passed by a zero
        if own > ZERO:
            kept = tuple(step for step in above if step[2] > own)
            mine = ((member_id, depth[member_id], own), *kept)
        steps[member_id] = mine
        standing = standings.get(member_id)
        if standing is None or standing.personal_volume <= ZERO:
            continue
        base, paid = standing.personal_volume, ZERO
        for earner_id, earner_depth, rate in mine:
            earner = standings[earner_id]
            assert earner.rank is not None
            difference = rate - paid
            paid = rate
            amount = round_money(EXACT.multiply(base, difference), currency)
            if amount.is_zero():  # as with sales, a line of nothing is not written
                continue
            lines.append(
                BonusLine(
                    bonus=BonusKind.DIFFERENTIAL,
                    earner_id=earner_id,
                    source_id=member_id,
                    level=depth[member_id] - earner_depth,
                    base=base,
                    rate=difference,
                    amount=amount,
                    rank=ranks[earner.rank].name,
                )
            )
    return lines


def _sponsors_first(sponsors: Mapping[str, str | None]) -> list[str]:
    """Every member, each after their sponsor (a sponsor not in the mapping is outside)."""
    recruits: dict[str, list[str]] = {}
    order = []
    for member_id, sponsor in sponsors.items():
        if sponsor is None or sponsor not in sponsors:
            order.append(member_id)
        else:
            recruits.setdefault(sponsor, []).append(member_id)
    position = 0
    while position < len(order):
        order.extend(recruits.get(order[position], ()))
        position += 1
    if len(order) != len(sponsors):
        raise ValueError("the sponsors form a cycle")
    return order


def matching_bonuses(
    ranks: Sequence[Rank],
    standings: Mapping[str, Ranked],
    sponsors: Mapping[str, str | None],
    earned: Mapping[str, Decimal],
    currency: str,
) -> list[BonusLine]:
    """The matching lines: `earned` is each member's personal, override and differential
    earnings of the period net of the reversals booked in it; a member whose rank sets
    `matching_rates` earns `matching_rates[g-1]` of it from each member g generations below
    (only a positive base pays, and a zero rate writes no line)."""
    deepest = max((len(rank.matching_rates) for rank in ranks), default=0)
    lines: list[BonusLine] = []
    if deepest == 0:
        return lines
    for source_id in sorted(earned):
        base = earned[source_id]
        if base <= ZERO:
            continue
        earner_id = sponsors.get(source_id)
        generation = 1
        while earner_id is not None and generation <= deepest:
            standing = standings.get(earner_id)
            if standing is not None and standing.rank is not None:
                rates = ranks[standing.rank].matching_rates
                rate = rates[generation - 1] if generation <= len(rates) else ZERO
                amount = round_money(EXACT.multiply(base, rate), currency)
                if not amount.is_zero():
                    lines.append(
                        BonusLine(
                            bonus=BonusKind.MATCHING,
                            earner_id=earner_id,
                            source_id=source_id,
                            level=generation,
                            base=base,
                            rate=rate,
                            amount=amount,
                            rank=ranks[standing.rank].name,
                        )
                    )
            earner_id = sponsors.get(earner_id)
            generation += 1
    return lines


def pool_bonuses(
    ranks: Sequence[Rank],
    standings: Iterable[Ranked],
    pool_rate: Decimal | None,
    net_volume: Decimal,
    currency: str,
) -> list[BonusLine]:
    """The pool lines: the pool is `pool_rate` of the program's net volume (rounded down;
    none when that is not positive), shared in proportion to the pool shares of the ranks
    held; each amount is rounded down, so the lines never exceed the pool."""
    if pool_rate is None or net_volume <= ZERO:
        return []
    pool = floor_money(EXACT.multiply(net_volume, pool_rate), currency)
    holders = sorted(
        (s for s in standings if s.rank is not None and ranks[s.rank].pool_shares),
        key=lambda s: s.member_id,
    )
    total = sum(ranks[s.rank].pool_shares or 0 for s in holders if s.rank is not None)
    lines = []
    for standing in holders:
        assert standing.rank is not None
        rank = ranks[standing.rank]
        shares = rank.pool_shares or 0
        exact = EXACT.divide(EXACT.multiply(pool, Decimal(shares)), Decimal(total))
        amount = floor_money(exact, currency)
        if amount.is_zero():
            continue
        lines.append(
            BonusLine(
                bonus=BonusKind.POOL,
                earner_id=standing.member_id,
                source_id=standing.member_id,
                level=0,
                base=pool,
                rate=(Decimal(shares) / Decimal(total)).quantize(
                    _POOL_RATE, rounding=ROUND_FLOOR, context=EXACT
                ),
                amount=amount,
                rank=rank.name,
                shares=shares,
                total_shares=total,
            )
        )
    return lines


def advancement_bonuses(
    ranks: Sequence[Rank],
    standings: Iterable[Ranked],
    achieved_before: Mapping[str, int | None],
    paid_before: Mapping[str, Collection[str]] | None = None,
) -> list[BonusLine]:
    """The advancement lines: for each member, every rank with an `advancement_bonus`
    above the highest rank they were ever paid as before this period (`achieved_before`;
    absent or None: never ranked) and at or below their paid-as rank now, unless that
    rank's advancement bonus was paid to them before (`paid_before`: rank names by member,
    so a bonus is paid once per rank and member, ever, even when a later plan version no
    longer names the rank they achieved)."""
    paid = paid_before or {}
    lines = []
    for standing in sorted(standings, key=lambda s: s.member_id):
        if standing.rank is None:
            continue
        before = achieved_before.get(standing.member_id)
        first = 0 if before is None else before + 1
        already = paid.get(standing.member_id, ())
        for index in range(first, standing.rank + 1):
            bonus = ranks[index].advancement_bonus
            if bonus is None or ranks[index].name in already:
                continue
            lines.append(
                BonusLine(
                    bonus=BonusKind.ADVANCEMENT,
                    earner_id=standing.member_id,
                    source_id=standing.member_id,
                    level=0,
                    base=bonus,
                    rate=Decimal(1),
                    amount=bonus,
                    rank=ranks[index].name,
                )
            )
    return lines
