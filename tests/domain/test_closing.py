"""The close's decisions: when a period may close, and what a member is paid."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from service.domain.closing import CloseRefusal, Settlement, refusal_to_close, settle


def test_not_ended_is_checked_first() -> None:
    assert (
        refusal_to_close(
            "2026-11", ended=False, open_from="2026-12", earliest_open_with_activity="2026-10"
        )
        is CloseRefusal.NOT_ENDED
    )


def test_an_earlier_open_period_with_activity_refuses() -> None:
    assert (
        refusal_to_close(
            "2026-11", ended=True, open_from=None, earliest_open_with_activity="2026-09"
        )
        is CloseRefusal.EARLIER_PERIOD_OPEN
    )
    assert (
        refusal_to_close("2026-11", ended=True, open_from=None, earliest_open_with_activity=None)
        is None
    )


def test_a_period_before_the_oldest_open_one_is_settled() -> None:
    assert (
        refusal_to_close(
            "2026-09", ended=True, open_from="2026-11", earliest_open_with_activity=None
        )
        is CloseRefusal.SETTLED
    )
    assert (
        refusal_to_close(
            "2026-11", ended=True, open_from="2026-11", earliest_open_with_activity=None
        )
        is None
    )


def test_settle_with_a_minimum() -> None:
    minimum = Decimal("25.00")
    # 10.00 + 14.99 = 24.99 < 25.00: carried whole.
    assert settle(Decimal("10.00"), Decimal("14.99"), minimum) == Settlement(
        Decimal(0), Decimal("24.99")
    )
    # 10.00 + 15.00 = 25.00 reaches it: paid whole.
    assert settle(Decimal("10.00"), Decimal("15.00"), minimum) == Settlement(
        Decimal("25.00"), Decimal(0)
    )


def test_a_debt_is_carried_and_paid_off_first() -> None:
    assert settle(Decimal(0), Decimal("-5.00"), None) == Settlement(Decimal(0), Decimal("-5.00"))
    # -5.00 + 8.00 = 3.00 payable without a minimum.
    assert settle(Decimal("-5.00"), Decimal("8.00"), None) == Settlement(
        Decimal("3.00"), Decimal(0)
    )


money = st.decimals(min_value=-10_000, max_value=10_000, places=2)


@given(money, money, st.none() | st.decimals(min_value=0, max_value=1_000, places=2))
def test_what_is_paid_and_carried_adds_up(
    carried_in: Decimal, earned: Decimal, minimum: Decimal | None
) -> None:
    settled = settle(carried_in, earned, minimum)
    assert settled.payable + settled.carried_out == carried_in + earned
    assert settled.payable >= 0
    assert settled.payable in (0, carried_in + earned)
