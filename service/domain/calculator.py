"""From a sale, its seller's upline and the plan in force to the sale's commission lines.

`calculate` is a pure function: the caller loads the upline as it is when the sale arrives
(nearest first: `upline[0]` is level 1, the seller's sponsor) with each member's enrolment
time and net personal volume in the plan's activity window before the sale, and stores what
comes back.
`reversal_lines` takes back a refunded share of those lines.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from enum import StrEnum

from service.domain.money import EXACT, floor_money, minor_unit, round_money
from service.domain.plan import CategoryRates, Compression, Plan

__all__ = [
    "SCALED_RATE_DECIMALS",
    "Calculation",
    "GenealogyError",
    "LevelDecision",
    "Line",
    "LineKind",
    "MemberStatus",
    "Participant",
    "ReversalLine",
    "SaleFacts",
    "SkipReason",
    "calculate",
    "refunded_share",
    "reversal_lines",
]

SCALED_RATE_DECIMALS = 10
"""Rates scaled down by the payout cap are cut (never rounded up) to ten decimal places."""

_SCALED_RATE_QUANTUM = Decimal(1).scaleb(-SCALED_RATE_DECIMALS)


class LineKind(StrEnum):
    PERSONAL = "personal"
    OVERRIDE = "override"
    REVERSAL = "reversal"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    TERMINATED = "terminated"


_STATUSES = frozenset(status.value for status in MemberStatus)


class SkipReason(StrEnum):
    """Why an upline member earned nothing on a sale.

    `terminated`, `not_yet_enrolled` (enrolled after the sale occurred), `inactive` and
    `below_activity_volume`: the member is not qualified to earn overrides.
    `beyond_depth`: every level the category pays is already taken. `zero_rate`: the member
    holds a paid level whose rate is 0. `rank_depth`: the member holds a paid level deeper
    than their rank in force unlocks. `zero_amount`: the member holds a paid level but the
    amount is 0 after rounding (and the payout cap).
    """

    TERMINATED = "terminated"
    NOT_YET_ENROLLED = "not_yet_enrolled"
    INACTIVE = "inactive"
    BELOW_ACTIVITY_VOLUME = "below_activity_volume"
    BEYOND_DEPTH = "beyond_depth"
    ZERO_RATE = "zero_rate"
    RANK_DEPTH = "rank_depth"
    ZERO_AMOUNT = "zero_amount"


class GenealogyError(ValueError):
    """The upline given is not a chain: the seller or a member appears in it twice."""

    code = "genealogy_cycle"


@dataclass(frozen=True, slots=True)
class SaleFacts:
    """What the calculation needs of a sale: commissions are paid on its `volume`; an
    upline member enrolled after `occurred_at` does not earn on it."""

    sale_id: str
    seller_id: str
    volume: Decimal
    category: str
    currency: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Participant:
    """A member as the calculation sees them when the sale arrives.

    `personal_volume` is the member's net personal volume in the activity window before the
    sale; it only matters for upline members of a plan with an activity rule.
    `unlocked_levels` is the deepest plan level the member earns an override at, from their
    rank in force (`Plan.levels_unlocked_for`); None: every level.
    """

    member_id: str
    status: str
    personal_volume: Decimal
    enrolled_at: datetime
    unlocked_levels: int | None = None

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"unknown member status {self.status!r}")
        if self.enrolled_at.tzinfo is None:
            raise ValueError("enrolled_at must carry a timezone")
        if self.unlocked_levels is not None and self.unlocked_levels < 0:
            raise ValueError("unlocked_levels must not be negative")


@dataclass(frozen=True, slots=True)
class Line:
    """One commission line: `earner_id` earns `amount` on a sale of volume `base` at `rate`.

    `level` is the genealogical distance from the seller (0 = the seller's own personal
    line); `paid_level` is the plan level that was paid, which differs from `level` only
    under dynamic compression.
    """

    earner_id: str
    kind: LineKind
    level: int
    paid_level: int
    rate: Decimal
    base: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class LevelDecision:
    """Whether the upline member at `level` was paid on the sale, and if not, why.

    `paid_level` is set when the member held a paid level, and `rate` and `amount` when that
    level's share was settled (even to zero); all are None for unqualified members and
    members beyond depth, and a member whose rank did not unlock the level held
    (`rank_depth`) has only `paid_level`.
    """

    level: int
    member_id: str
    paid: bool
    paid_level: int | None
    rate: Decimal | None
    amount: Decimal | None
    reason: SkipReason | None


@dataclass(frozen=True, slots=True)
class Calculation:
    """A sale's lines (personal first, then overrides nearest first) and one decision per
    upline member the calculation looked at, nearest first."""

    lines: tuple[Line, ...]
    decisions: tuple[LevelDecision, ...]

    @property
    def total(self) -> Decimal:
        """What the sale pays out in all."""
        return sum((line.amount for line in self.lines), Decimal(0))


@dataclass(frozen=True, slots=True)
class ReversalLine:
    """The part of an original line that a refund takes back: negative `base` and `amount`,
    same earner, rate, level and paid level as the line it reverses."""

    earner_id: str
    reversed_kind: LineKind
    level: int
    paid_level: int
    rate: Decimal
    base: Decimal
    amount: Decimal

    @property
    def kind(self) -> LineKind:
        return LineKind.REVERSAL


@dataclass(frozen=True, slots=True)
class _Share:
    """A line the plan would pay before the cap and rounding settle its amount."""

    earner_id: str
    kind: LineKind
    level: int
    paid_level: int
    rate: Decimal


@dataclass(frozen=True, slots=True)
class _Verdict:
    """An upline member's outcome before amounts are known; `share` indexes the shares."""

    level: int
    member_id: str
    paid_level: int | None
    reason: SkipReason | None
    share: int | None


def _check_inputs(sale: SaleFacts, seller: Participant, upline: Sequence[Participant]) -> None:
    if seller.member_id != sale.seller_id:
        raise ValueError("the seller does not match the sale's seller_id")
    if not sale.volume.is_finite() or sale.volume < 0:
        raise ValueError("sale volume must be a non-negative amount")
    if round_money(sale.volume, sale.currency) != sale.volume:
        raise ValueError(f"sale volume has more decimals than {sale.currency} allows")
    if sale.occurred_at.tzinfo is None:
        raise ValueError("the sale's occurred_at must carry a timezone")
    seen = {seller.member_id}
    for member in upline:
        if member.member_id in seen:
            raise GenealogyError(f"member {member.member_id!r} appears twice in the upline")
        seen.add(member.member_id)


def _disqualification(plan: Plan, sale: SaleFacts, member: Participant) -> SkipReason | None:
    """Terminated members never earn; overrides also need to have been enrolled when the
    sale occurred (the same instant counts), active status and, when the plan has an
    activity rule, at least its personal volume in the window."""
    if member.status == MemberStatus.TERMINATED:
        return SkipReason.TERMINATED
    if member.enrolled_at > sale.occurred_at:
        return SkipReason.NOT_YET_ENROLLED
    if member.status == MemberStatus.INACTIVE:
        return SkipReason.INACTIVE
    if plan.activity is not None and member.personal_volume < plan.activity.min_personal_volume:
        return SkipReason.BELOW_ACTIVITY_VOLUME
    return None


def _walk_upline(
    plan: Plan,
    sale: SaleFacts,
    rates: CategoryRates,
    upline: Sequence[Participant],
    shares: list[_Share],
) -> list[_Verdict]:
    """Assign plan levels to upline members, appending the paying ones to `shares`.

    Without compression the member at distance L holds level L, qualified or not. With
    dynamic compression unqualified members are skipped and each qualified member takes the
    next level. A qualified member whose rank does not unlock the level still holds it
    (compression does not skip them) but is not paid. The walk stops at the first member
    past the last level the category pays.
    """
    verdicts: list[_Verdict] = []
    dynamic = plan.compression is Compression.DYNAMIC
    levels_taken = 0
    for level, member in enumerate(upline, start=1):
        next_level = levels_taken + 1 if dynamic else level
        if next_level > rates.depth:
            verdicts.append(_Verdict(level, member.member_id, None, SkipReason.BEYOND_DEPTH, None))
            break
        reason = _disqualification(plan, sale, member)
        if reason is not None:
            verdicts.append(_Verdict(level, member.member_id, None, reason, None))
            continue
        levels_taken = next_level
        rate = rates.level_rates[next_level - 1]
        if rate == 0:
            verdicts.append(
                _Verdict(level, member.member_id, next_level, SkipReason.ZERO_RATE, None)
            )
            continue
        if member.unlocked_levels is not None and next_level > member.unlocked_levels:
            verdicts.append(
                _Verdict(level, member.member_id, next_level, SkipReason.RANK_DEPTH, None)
            )
            continue
        verdicts.append(_Verdict(level, member.member_id, next_level, None, len(shares)))
        shares.append(_Share(member.member_id, LineKind.OVERRIDE, level, next_level, rate))
    return verdicts


def _settle(
    shares: Sequence[_Share], volume: Decimal, cap: Decimal | None, currency: str
) -> list[tuple[Decimal, Decimal]]:
    """The (rate, amount) of each share.

    Each amount is volume x rate rounded half-even. With a payout cap, when the rates add up
    to more than the cap each rate is scaled by cap / total (cut to ten decimals); then, if
    rounding still lifts the total above volume x cap rounded down, one minor unit at a time
    is taken back from the line that rounding favoured most (ties: the deepest level).
    """
    rates = [share.rate for share in shares]
    if cap is not None:
        total_rate = sum(rates, Decimal(0))
        if total_rate > cap:
            rates = [
                (rate * cap / total_rate).quantize(_SCALED_RATE_QUANTUM, rounding=ROUND_DOWN)
                for rate in rates
            ]
    exact = [volume * rate for rate in rates]
    amounts = [round_money(value, currency) for value in exact]
    if cap is not None:
        unit = Decimal(1).scaleb(-minor_unit(currency))
        excess = sum(amounts, Decimal(0)) - floor_money(volume * cap, currency)
        while excess > 0:
            # Such a line always exists: when no amount exceeds its exact value, the total is
            # at most volume x cap, hence at most that rounded down.
            favoured = max(
                (index for index in range(len(amounts)) if amounts[index] > exact[index]),
                key=lambda index: (amounts[index] - exact[index], shares[index].level),
            )
            amounts[favoured] -= unit
            excess -= unit
    return list(zip(rates, amounts, strict=True))


def calculate(
    plan: Plan, sale: SaleFacts, seller: Participant, upline: Sequence[Participant]
) -> Calculation:
    """The commission lines of a sale and the decision taken at each upline level.

    The seller earns the category's personal rate on the volume unless terminated (activity
    does not gate personal commission). Level L of the plan pays the upline member who holds
    it (see compression) if qualified. A category the plan does not name pays nothing and
    records no decisions. Lines whose amount is zero are not written. With
    `max_payout_ratio` the lines of the sale never add up to more than that share of the
    volume. Decisions cover every upline member walked, up to and including the first
    member beyond the plan's depth (not the rest of the chain).
    """
    _check_inputs(sale, seller, upline)
    rates = plan.rates_for(sale.category)
    if rates is None:
        return Calculation(lines=(), decisions=())
    with localcontext(EXACT):
        shares: list[_Share] = []
        if seller.status != MemberStatus.TERMINATED and rates.personal_rate > 0:
            shares.append(_Share(seller.member_id, LineKind.PERSONAL, 0, 0, rates.personal_rate))
        verdicts = _walk_upline(plan, sale, rates, upline, shares)
        settled = _settle(shares, sale.volume, plan.max_payout_ratio, sale.currency)

    lines = tuple(
        Line(
            earner_id=share.earner_id,
            kind=share.kind,
            level=share.level,
            paid_level=share.paid_level,
            rate=rate,
            base=sale.volume,
            amount=amount,
        )
        for share, (rate, amount) in zip(shares, settled, strict=True)
        if amount > 0
    )
    decisions: list[LevelDecision] = []
    for verdict in verdicts:
        if verdict.share is None:
            zero_rate = verdict.reason is SkipReason.ZERO_RATE
            decisions.append(
                LevelDecision(
                    level=verdict.level,
                    member_id=verdict.member_id,
                    paid=False,
                    paid_level=verdict.paid_level,
                    rate=Decimal(0) if zero_rate else None,
                    amount=round_money(Decimal(0), sale.currency) if zero_rate else None,
                    reason=verdict.reason,
                )
            )
            continue
        rate, amount = settled[verdict.share]
        decisions.append(
            LevelDecision(
                level=verdict.level,
                member_id=verdict.member_id,
                paid=amount > 0,
                paid_level=verdict.paid_level,
                rate=rate,
                amount=amount,
                reason=None if amount > 0 else SkipReason.ZERO_AMOUNT,
            )
        )
    return Calculation(lines=lines, decisions=tuple(decisions))


def reversal_lines(
    original: Sequence[Line],
    *,
    sale_amount: Decimal,
    refunded_before: Decimal,
    refund_amount: Decimal,
    currency: str,
) -> tuple[ReversalLine, ...]:
    """What a refund takes back from each line of its sale.

    After refunds totalling R of a sale of amount A, each line has given back
    round_money(line x R / A); a refund takes the difference between that figure after and
    before it. Refunds adding up to the whole sale therefore take back exactly every line,
    whatever their number and sizes, and no refund takes back more than the line paid.
    Reversals that come to zero are omitted.
    """
    if not sale_amount.is_finite() or sale_amount <= 0:
        raise ValueError("sale amount must be positive")
    if not refund_amount.is_finite() or refund_amount <= 0:
        raise ValueError("refund amount must be positive")
    if not refunded_before.is_finite() or refunded_before < 0:
        raise ValueError("amount refunded before must not be negative")
    if refunded_before + refund_amount > sale_amount:
        raise ValueError("refunds would exceed the sale amount")

    reversals: list[ReversalLine] = []
    for line in original:
        amount = refunded_share(
            line.amount,
            sale_amount=sale_amount,
            refunded_before=refunded_before,
            refund_amount=refund_amount,
            currency=currency,
        )
        if amount == 0:
            continue
        base = refunded_share(
            line.base,
            sale_amount=sale_amount,
            refunded_before=refunded_before,
            refund_amount=refund_amount,
            currency=currency,
        )
        reversals.append(
            ReversalLine(
                earner_id=line.earner_id,
                reversed_kind=line.kind,
                level=line.level,
                paid_level=line.paid_level,
                rate=line.rate,
                base=-base,
                amount=-amount,
            )
        )
    return tuple(reversals)


def refunded_share(
    value: Decimal,
    *,
    sale_amount: Decimal,
    refunded_before: Decimal,
    refund_amount: Decimal,
    currency: str,
) -> Decimal:
    """The part of `value` (a line, or the sale's volume) that one refund takes back.

    After refunds totalling R of a sale of amount A, round_money(value x R / A) has been
    taken back; a refund takes the difference between that figure after and before it, so
    refunds adding up to the whole sale take back exactly `value`.
    """
    with localcontext(EXACT):
        # 80 significant digits keep the quotient exact enough that rounding it half-even
        # gives the same result as rounding the exact fraction.
        after = round_money(value * (refunded_before + refund_amount) / sale_amount, currency)
        before = round_money(value * refunded_before / sale_amount, currency)
        return after - before
