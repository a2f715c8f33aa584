"""Closing a period: whether it may close, and what each member is paid.

The close is the one place where period-end work runs. It loads the period's figures,
decides here, and writes: today the statements (what each member earned, was carried in,
is paid and carries out); ranks and bonuses, when they come, are decided here too and
written as lines of the period before the statements add the lines up.

The payout rule, `settle`, is applied by the close's one INSERT ... SELECT over every
member at once (service/db/periods.py); a property test keeps the SQL equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

__all__ = ["CloseRefusal", "Settlement", "refusal_to_close", "settle"]

ZERO = Decimal(0)


class CloseRefusal(Enum):
    """Why a period may not close (yet)."""

    NOT_ENDED = "period_not_ended"
    EARLIER_PERIOD_OPEN = "earlier_period_open"
    SETTLED = "period_settled"


def refusal_to_close(
    period: str,
    *,
    ended: bool,
    open_from: str | None,
    earliest_open_with_activity: str | None,
) -> CloseRefusal | None:
    """Whether the period may close now, given whether its last instant has passed, the
    program's oldest open period (None: none closed yet) and the earliest open period that
    holds any booked line or volume. Not ended is checked first, whatever else holds.

    Periods close in order: one before `open_from` is settled already (closed, or skipped
    by a later close because nothing was booked in it); an earlier open period holding
    anything must close first. A period already closed is not a refusal: the caller
    answers its close as it was.
    """
    if not ended:
        return CloseRefusal.NOT_ENDED
    if open_from is not None and period < open_from:
        return CloseRefusal.SETTLED
    if earliest_open_with_activity is not None and earliest_open_with_activity < period:
        return CloseRefusal.EARLIER_PERIOD_OPEN
    return None


@dataclass(frozen=True, slots=True)
class Settlement:
    """A member's payout for a period: `payable + carried_out = carried_in + earned`."""

    payable: Decimal
    carried_out: Decimal


def settle(carried_in: Decimal, earned: Decimal, minimum: Decimal | None) -> Settlement:
    """What is paid of a member's balance (carried in + earned) and what is carried out.

    With a minimum, the balance is paid whole once it reaches the minimum, else carried
    forward; a negative balance (reversals above earnings) is a debt carried forward, paid
    off first by later earnings. Without a minimum every positive balance is paid.
    """
    balance = carried_in + earned
    payable = balance if balance > ZERO and (minimum is None or balance >= minimum) else ZERO
    return Settlement(payable=payable, carried_out=balance - payable)
