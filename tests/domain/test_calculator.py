from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.calculator import (
    GenealogyError,
    LevelDecision,
    Line,
    LineKind,
    Participant,
    ReversalLine,
    SaleFacts,
    SkipReason,
    calculate,
    reversal_lines,
)
from service.domain.money import minor_unit, round_money
from service.domain.plan import ActivityRule, CategoryRates, Compression, Plan

D = Decimal
SALE_AT = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
ENROLLED = datetime(2026, 1, 1, tzinfo=UTC)


def plan_of(
    personal_rate: str,
    level_rates: Sequence[str],
    *,
    compression: Compression = Compression.NONE,
    activity: ActivityRule | None = None,
    cap: str | None = None,
) -> Plan:
    return Plan(
        categories=(("product", CategoryRates(D(personal_rate), tuple(map(D, level_rates)))),),
        compression=compression,
        activity=activity,
        max_payout_ratio=None if cap is None else D(cap),
    )


def member(
    member_id: str,
    status: str = "active",
    personal_volume: str = "0",
    *,
    enrolled_at: datetime = ENROLLED,
) -> Participant:
    return Participant(member_id, status, D(personal_volume), enrolled_at)


def sale_of(volume: str, *, seller: str = "S", currency: str = "USD") -> SaleFacts:
    return SaleFacts("O-1", seller, D(volume), "product", currency, SALE_AT)


def chain(*ids: str) -> list[Participant]:
    return [member(member_id) for member_id in ids]


def summary(lines: Sequence[Line | ReversalLine]) -> list[tuple[str, int, int, str]]:
    return [(line.earner_id, line.level, line.paid_level, str(line.amount)) for line in lines]


def reasons(decisions: Sequence[LevelDecision]) -> list[tuple[str, int | None, str | None]]:
    return [(d.member_id, d.paid_level, d.reason) for d in decisions]


def test_a_four_level_chain_pays_diminishing_overrides() -> None:
    # Volume 250.00: personal 10 % = 25.00; levels 10 %, 5 %, 3 %, 2 % =
    # 25.00, 12.50, 7.50, 5.00. U5 is past the depth of 4. Total 75.00.
    plan = plan_of("0.10", ["0.10", "0.05", "0.03", "0.02"])
    result = calculate(plan, sale_of("250.00"), member("S"), chain("U1", "U2", "U3", "U4", "U5"))
    assert result.lines == (
        Line("S", LineKind.PERSONAL, 0, 0, D("0.10"), D("250.00"), D("25.00")),
        Line("U1", LineKind.OVERRIDE, 1, 1, D("0.10"), D("250.00"), D("25.00")),
        Line("U2", LineKind.OVERRIDE, 2, 2, D("0.05"), D("250.00"), D("12.50")),
        Line("U3", LineKind.OVERRIDE, 3, 3, D("0.03"), D("250.00"), D("7.50")),
        Line("U4", LineKind.OVERRIDE, 4, 4, D("0.02"), D("250.00"), D("5.00")),
    )
    assert result.total == D("75.00")
    assert result.decisions[-1] == LevelDecision(
        5, "U5", paid=False, paid_level=None, rate=None, amount=None, reason=SkipReason.BEYOND_DEPTH
    )
    assert [d.paid for d in result.decisions] == [True, True, True, True, False]


def test_only_the_first_member_beyond_depth_gets_a_decision() -> None:
    plan = plan_of("0", ["0.05"])
    result = calculate(plan, sale_of("10.00"), member("S"), chain("U1", "U2", "U3", "U4"))
    assert reasons(result.decisions) == [("U1", 1, None), ("U2", None, "beyond_depth")]


def test_a_short_upline_pays_the_levels_it_has() -> None:
    plan = plan_of("0", ["0.05", "0.03", "0.02"])
    result = calculate(plan, sale_of("100.00"), member("S"), chain("ROOT"))
    assert summary(result.lines) == [("ROOT", 1, 1, "5.00")]
    assert calculate(plan, sale_of("100.00"), member("S"), []) == calculate(
        plan, sale_of("100.00"), member("S"), ()
    )


INACTIVE_IN_THE_MIDDLE = [
    member("A"),
    member("B", "inactive"),
    member("C"),
    member("D"),
    member("E"),
]


def test_without_compression_an_inactive_members_share_is_not_paid() -> None:
    # Volume 100.00, levels 5 %, 3 %, 2 %: A (level 1) 5.00; B inactive, its 3.00 is
    # kept; C (level 3) 2.00; D is level 4, past the depth.
    plan = plan_of("0", ["0.05", "0.03", "0.02"])
    result = calculate(plan, sale_of("100.00"), member("S"), INACTIVE_IN_THE_MIDDLE)
    assert summary(result.lines) == [("A", 1, 1, "5.00"), ("C", 3, 3, "2.00")]
    assert reasons(result.decisions) == [
        ("A", 1, None),
        ("B", None, "inactive"),
        ("C", 3, None),
        ("D", None, "beyond_depth"),
    ]


def test_dynamic_compression_rolls_the_level_up_past_an_inactive_member() -> None:
    # Same sale: A holds level 1 (5.00), B is skipped, C takes level 2 (3 % = 3.00) and
    # D level 3 (2 % = 2.00); E is past the depth.
    plan = plan_of("0", ["0.05", "0.03", "0.02"], compression=Compression.DYNAMIC)
    result = calculate(plan, sale_of("100.00"), member("S"), INACTIVE_IN_THE_MIDDLE)
    assert summary(result.lines) == [("A", 1, 1, "5.00"), ("C", 3, 2, "3.00"), ("D", 4, 3, "2.00")]
    assert [line.rate for line in result.lines] == [D("0.05"), D("0.03"), D("0.02")]
    assert reasons(result.decisions) == [
        ("A", 1, None),
        ("B", None, "inactive"),
        ("C", 2, None),
        ("D", 3, None),
        ("E", None, "beyond_depth"),
    ]


def test_activity_volume_qualifies_for_overrides_but_not_for_personal_commission() -> None:
    # The seller has no personal volume and still earns 10 % of 80.00 = 8.00. U1 has
    # 99.99 of the 100.00 required: skipped; U2 has exactly 100.00 and takes level 1.
    plan = plan_of(
        "0.10",
        ["0.05", "0.03"],
        compression=Compression.DYNAMIC,
        activity=ActivityRule(D("100.00"), 30),
    )
    upline = [member("U1", personal_volume="99.99"), member("U2", personal_volume="100.00")]
    result = calculate(plan, sale_of("80.00"), member("S"), upline)
    assert summary(result.lines) == [("S", 0, 0, "8.00"), ("U2", 2, 1, "4.00")]
    assert reasons(result.decisions) == [("U1", None, "below_activity_volume"), ("U2", 1, None)]


def test_terminated_members_never_earn() -> None:
    # The terminated seller gets no personal line; the upline is still paid on the sale.
    # T is terminated: under dynamic compression U2 takes level 2.
    plan = plan_of("0.10", ["0.05", "0.03"], compression=Compression.DYNAMIC)
    upline = [member("U1"), member("T", "terminated"), member("U2")]
    result = calculate(plan, sale_of("100.00"), member("S", "terminated"), upline)
    assert summary(result.lines) == [("U1", 1, 1, "5.00"), ("U2", 3, 2, "3.00")]
    assert reasons(result.decisions) == [
        ("U1", 1, None),
        ("T", None, "terminated"),
        ("U2", 2, None),
    ]


NOT_YET_ENROLLED_IN_THE_MIDDLE = [
    member("A"),
    member("B", enrolled_at=SALE_AT + timedelta(seconds=1)),
    member("C", enrolled_at=SALE_AT),
    member("D"),
    member("E"),
]


def test_without_compression_a_member_enrolled_after_the_sale_is_not_paid() -> None:
    # Volume 100.00, levels 5 %, 3 %, 2 %: A 5.00; B joined a second after the sale, its
    # 3.00 is kept; C, enrolled at the very instant of the sale, holds level 3: 2.00.
    plan = plan_of("0", ["0.05", "0.03", "0.02"])
    result = calculate(plan, sale_of("100.00"), member("S"), NOT_YET_ENROLLED_IN_THE_MIDDLE)
    assert summary(result.lines) == [("A", 1, 1, "5.00"), ("C", 3, 3, "2.00")]
    assert reasons(result.decisions) == [
        ("A", 1, None),
        ("B", None, "not_yet_enrolled"),
        ("C", 3, None),
        ("D", None, "beyond_depth"),
    ]


def test_dynamic_compression_rolls_up_past_a_member_enrolled_after_the_sale() -> None:
    # A 5.00; B is skipped; C takes level 2 (3.00) and D level 3 (2.00); E beyond depth.
    plan = plan_of("0", ["0.05", "0.03", "0.02"], compression=Compression.DYNAMIC)
    result = calculate(plan, sale_of("100.00"), member("S"), NOT_YET_ENROLLED_IN_THE_MIDDLE)
    assert summary(result.lines) == [("A", 1, 1, "5.00"), ("C", 3, 2, "3.00"), ("D", 4, 3, "2.00")]
    assert reasons(result.decisions) == [
        ("A", 1, None),
        ("B", None, "not_yet_enrolled"),
        ("C", 2, None),
        ("D", 3, None),
        ("E", None, "beyond_depth"),
    ]


def gated(member_id: str, unlocked: int | None, status: str = "active") -> Participant:
    return Participant(member_id, status, D(0), ENROLLED, unlocked_levels=unlocked)


# Levels 5 %, 4 %, 3 %, 2 % of 100.00. A unlocks 2 levels, B only 1, C is inactive, D
# unlocks 4, E has no limit, F is one more member.
RANK_GATED_UPLINE = [
    gated("A", 2),
    gated("B", 1),
    gated("C", 4, "inactive"),
    gated("D", 4),
    gated("E", None),
    gated("F", None),
]


def test_without_compression_a_rank_pays_only_the_levels_it_unlocks() -> None:
    # A holds level 1 (within 2): 5.00. B holds level 2, deeper than its 1: the 4.00 is
    # not paid (rank_depth). C holds level 3, inactive. D holds level 4 (within 4): 2.00.
    # E is beyond the depth. Paid in all: 7.00.
    plan = plan_of("0", ["0.05", "0.04", "0.03", "0.02"])
    result = calculate(plan, sale_of("100.00"), member("S"), RANK_GATED_UPLINE)
    assert summary(result.lines) == [("A", 1, 1, "5.00"), ("D", 4, 4, "2.00")]
    assert reasons(result.decisions) == [
        ("A", 1, None),
        ("B", 2, "rank_depth"),
        ("C", None, "inactive"),
        ("D", 4, None),
        ("E", None, "beyond_depth"),
    ]
    held = result.decisions[1]
    assert (held.paid, held.rate, held.amount) == (False, None, None)
    assert result.total == D("7.00")


def test_with_dynamic_compression_a_rank_short_of_the_level_still_holds_it() -> None:
    # A level 1: 5.00. B is qualified, so B holds level 2 (compression does not skip it)
    # but its rank unlocks only 1: 4.00 not paid. C (inactive) is skipped; D takes level 3:
    # 3.00; E takes level 4: 2.00; F is beyond the depth. Paid: 10.00, not the 14.00 that
    # would be paid if B were passed over.
    plan = plan_of("0", ["0.05", "0.04", "0.03", "0.02"], compression=Compression.DYNAMIC)
    result = calculate(plan, sale_of("100.00"), member("S"), RANK_GATED_UPLINE)
    assert summary(result.lines) == [("A", 1, 1, "5.00"), ("D", 4, 3, "3.00"), ("E", 5, 4, "2.00")]
    assert reasons(result.decisions) == [
        ("A", 1, None),
        ("B", 2, "rank_depth"),
        ("C", None, "inactive"),
        ("D", 3, None),
        ("E", 4, None),
        ("F", None, "beyond_depth"),
    ]
    assert result.total == D("10.00")


def test_a_rank_that_unlocks_no_level_earns_only_personal_commission() -> None:
    # unlocked_levels 0: the seller's own 10 % of 50.00 = 5.00 is paid; U, who unlocks
    # none, holds level 1 and is not paid its 2.50.
    plan = plan_of("0.10", ["0.05"])
    result = calculate(plan, sale_of("50.00"), gated("S", 0), [gated("U", 0)])
    assert summary(result.lines) == [("S", 0, 0, "5.00")]
    assert reasons(result.decisions) == [("U", 1, "rank_depth")]


def test_a_zero_rate_is_told_before_the_rank_depth() -> None:
    # Level 2 pays 0 %: nobody would be paid there whatever their rank.
    plan = plan_of("0", ["0.05", "0"])
    result = calculate(plan, sale_of("100.00"), member("S"), [gated("A", 1), gated("B", 1)])
    assert reasons(result.decisions) == [("A", 1, None), ("B", 2, "zero_rate")]


def test_unlocked_levels_are_never_negative() -> None:
    with pytest.raises(ValueError, match="unlocked_levels"):
        gated("A", -1)


def test_a_terminated_member_is_terminated_before_not_yet_enrolled() -> None:
    plan = plan_of("0", ["0.05", "0.03"])
    upline = [
        member("T", "terminated", enrolled_at=SALE_AT + timedelta(days=1)),
        member("I", "inactive", enrolled_at=SALE_AT + timedelta(days=1)),
    ]
    result = calculate(plan, sale_of("100.00"), member("S"), upline)
    assert result.lines == ()
    assert reasons(result.decisions) == [("T", None, "terminated"), ("I", None, "not_yet_enrolled")]


def test_an_inactive_seller_still_earns_personal_commission() -> None:
    plan = plan_of("0.10", [])
    result = calculate(plan, sale_of("100.00"), member("S", "inactive"), chain("U1"))
    assert summary(result.lines) == [("S", 0, 0, "10.00")]
    assert reasons(result.decisions) == [("U1", None, "beyond_depth")]


def test_a_category_the_plan_does_not_name_pays_nothing() -> None:
    plan = plan_of("0.10", ["0.05"])
    sale = SaleFacts("O-1", "S", D("100.00"), "subscription", "USD", SALE_AT)
    result = calculate(plan, sale, member("S"), chain("U1"))
    assert result.lines == ()
    assert result.decisions == ()


def test_zero_rates_and_zero_amounts_write_no_lines() -> None:
    # Personal rate 0: no line. Level 1 at 0 %: held by U1 but unpaid. Level 2 at 3 % of
    # 0.10 = 0.003, which rounds to 0.00: no line either.
    plan = plan_of("0", ["0", "0.03"])
    result = calculate(plan, sale_of("0.10"), member("S"), chain("U1", "U2"))
    assert result.lines == ()
    assert result.decisions == (
        LevelDecision(1, "U1", False, 1, D("0"), D("0.00"), SkipReason.ZERO_RATE),
        LevelDecision(2, "U2", False, 2, D("0.03"), D("0.00"), SkipReason.ZERO_AMOUNT),
    )


def test_each_amount_is_rounded_half_even_once() -> None:
    # 10.50 x 5 % = 0.525 -> 0.52 (half to even); 10.70 x 5 % = 0.535 -> 0.54.
    plan = plan_of("0", ["0.05"])
    assert calculate(plan, sale_of("10.50"), member("S"), chain("U1")).total == D("0.52")
    assert calculate(plan, sale_of("10.70"), member("S"), chain("U1")).total == D("0.54")


def test_amounts_follow_the_currency_minor_unit() -> None:
    # JPY: 1,999 x 5 % = 99.95 -> 100. KWD: 1.999 x 5 % = 0.09995 -> 0.100.
    plan = plan_of("0", ["0.05"])
    jpy = calculate(plan, sale_of("1999", currency="JPY"), member("S"), chain("U1"))
    kwd = calculate(plan, sale_of("1.999", currency="KWD"), member("S"), chain("U1"))
    assert jpy.lines[0].amount == D("100")
    assert kwd.lines[0].amount == D("0.100")


def test_the_cap_scales_every_rate_down() -> None:
    # Rates 10 % + 20 % + 40 % = 70 % against a 60 % cap: each is scaled by 6/7 and cut
    # to ten decimals: 0.0857142857, 0.1714285714, 0.3428571428. On 100.00 that is
    # 8.57142857 -> 8.57, 17.14285714 -> 17.14, 34.28571428 -> 34.29; total 60.00.
    plan = plan_of("0.10", ["0.20", "0.40"], cap="0.60")
    result = calculate(plan, sale_of("100.00"), member("S"), chain("U1", "U2"))
    assert [line.rate for line in result.lines] == [
        D("0.0857142857"),
        D("0.1714285714"),
        D("0.3428571428"),
    ]
    assert summary(result.lines) == [
        ("S", 0, 0, "8.57"),
        ("U1", 1, 1, "17.14"),
        ("U2", 2, 2, "34.29"),
    ]
    assert result.total == D("60.00")


def test_a_cap_that_is_not_reached_changes_nothing() -> None:
    plan = plan_of("0.10", ["0.05"], cap="0.60")
    result = calculate(plan, sale_of("100.00"), member("S"), chain("U1"))
    assert summary(result.lines) == [("S", 0, 0, "10.00"), ("U1", 1, 1, "5.00")]
    assert [line.rate for line in result.lines] == [D("0.10"), D("0.05")]


def test_the_cap_takes_back_what_rounding_added_from_the_deepest_lines() -> None:
    # Four rates of 25 % against a 50 % cap: each becomes 12.5 %. On 10.04 each line is
    # 1.255, rounded half-even to 1.26: 4 x 1.26 = 5.04, but the cap is 10.04 x 50 % =
    # 5.02. All four gained 0.005 from rounding, so the two cents come back from the
    # deepest lines first: U3 and U2 get 1.25.
    plan = plan_of("0.25", ["0.25", "0.25", "0.25"], cap="0.50")
    result = calculate(plan, sale_of("10.04"), member("S"), chain("U1", "U2", "U3"))
    assert summary(result.lines) == [
        ("S", 0, 0, "1.26"),
        ("U1", 1, 1, "1.26"),
        ("U2", 2, 2, "1.25"),
        ("U3", 3, 3, "1.25"),
    ]
    assert result.total == D("5.02")


def test_the_cap_takes_back_from_the_line_rounding_favoured_most() -> None:
    # Rates 20 % and 30 % within a 50 % cap, so nothing is scaled, on 0.07: the exact
    # amounts 0.014 and 0.021 round to 0.01 and 0.02 = 0.03, but 0.07 x 50 % = 0.035 is
    # capped at 0.03: fine. On 0.05: 0.010 and 0.015 -> 0.01 and 0.02 = 0.03 > 0.02
    # (0.025 rounded down); only the 30 % line gained (0.005) and it gives back a cent.
    plan = plan_of("0.20", ["0.30"], cap="0.50")
    assert summary(calculate(plan, sale_of("0.07"), member("S"), chain("U1")).lines) == [
        ("S", 0, 0, "0.01"),
        ("U1", 1, 1, "0.02"),
    ]
    assert summary(calculate(plan, sale_of("0.05"), member("S"), chain("U1")).lines) == [
        ("S", 0, 0, "0.01"),
        ("U1", 1, 1, "0.01"),
    ]


def test_a_line_taken_back_to_zero_is_not_written() -> None:
    # 50 % + 50 % capped at 50 %: 25 % each; on 0.02 each line is 0.005 -> 0.00 (half to
    # even), so nothing is paid. On 0.06: 0.015 -> 0.02 each = 0.04 > 0.03; U1 (deeper)
    # gives a cent back: 0.02 + 0.01.
    plan = plan_of("0.50", ["0.50"], cap="0.50")
    assert calculate(plan, sale_of("0.02"), member("S"), chain("U1")).lines == ()
    assert summary(calculate(plan, sale_of("0.06"), member("S"), chain("U1")).lines) == [
        ("S", 0, 0, "0.02"),
        ("U1", 1, 1, "0.01"),
    ]


def test_the_seller_in_their_own_upline_is_refused() -> None:
    plan = plan_of("0.10", ["0.05"])
    with pytest.raises(GenealogyError):
        calculate(plan, sale_of("1.00"), member("S"), chain("U1", "S"))


def test_a_member_twice_in_the_upline_is_refused() -> None:
    plan = plan_of("0.10", ["0.05"])
    with pytest.raises(GenealogyError):
        calculate(plan, sale_of("1.00"), member("S"), chain("U1", "U2", "U1"))


@pytest.mark.parametrize("volume", ["1.001", "-1.00", "NaN"])
def test_a_volume_that_is_not_money_is_refused(volume: str) -> None:
    with pytest.raises(ValueError, match="volume"):
        calculate(plan_of("0.10", []), sale_of(volume), member("S"), [])


def test_the_seller_must_be_the_sales_seller() -> None:
    with pytest.raises(ValueError, match="seller"):
        calculate(plan_of("0.10", []), sale_of("1.00"), member("X"), [])


def test_member_status_is_one_of_three() -> None:
    with pytest.raises(ValueError, match="status"):
        member("S", "suspended")


def original_lines() -> tuple[Line, ...]:
    # 100.00 at 10 %, 5 % and 3.33 %: 10.00, 5.00, 3.33.
    plan = plan_of("0.10", ["0.05", "0.0333"])
    return calculate(plan, sale_of("100.00"), member("S"), chain("U1", "U2")).lines


def test_a_partial_then_a_full_refund_net_every_earner_to_zero() -> None:
    lines = original_lines()
    assert summary(lines) == [("S", 0, 0, "10.00"), ("U1", 1, 1, "5.00"), ("U2", 2, 2, "3.33")]
    # 30 % refunded: 3.00, 1.50 and 3.33 x 0.3 = 0.999 -> 1.00.
    first = reversal_lines(
        lines,
        sale_amount=D("100.00"),
        refunded_before=D(0),
        refund_amount=D("30.00"),
        currency="USD",
    )
    assert summary(first) == [("S", 0, 0, "-3.00"), ("U1", 1, 1, "-1.50"), ("U2", 2, 2, "-1.00")]
    assert [line.base for line in first] == [D("-30.00")] * 3
    assert all(line.kind is LineKind.REVERSAL for line in first)
    assert [line.reversed_kind for line in first] == [LineKind.PERSONAL] + [LineKind.OVERRIDE] * 2
    # The remaining 70 %: whatever was not yet taken back, 7.00, 3.50 and 3.33 - 1.00 = 2.33.
    second = reversal_lines(
        lines,
        sale_amount=D("100.00"),
        refunded_before=D("30.00"),
        refund_amount=D("70.00"),
        currency="USD",
    )
    assert summary(second) == [("S", 0, 0, "-7.00"), ("U1", 1, 1, "-3.50"), ("U2", 2, 2, "-2.33")]
    assert [line.rate for line in second] == [D("0.10"), D("0.05"), D("0.0333")]


def test_three_refunds_of_a_third_net_to_zero() -> None:
    # A 30.00 sale refunded 10.00 at a time. Taken back after each refund, per line:
    # 1.00 -> 0.33, 0.67, 1.00, so 0.33, 0.34, 0.33;
    # 0.02 -> 0.0067 = 0.01, 0.0133 = 0.01, 0.02, so 0.01, nothing, 0.01;
    # 0.01 -> 0.0033 = 0.00, 0.0067 = 0.01, 0.01, so nothing, 0.01, nothing.
    base = D("30.00")
    lines = [
        Line("A", LineKind.PERSONAL, 0, 0, D("0.0333"), base, D("1.00")),
        Line("B", LineKind.OVERRIDE, 1, 1, D("0.0006"), base, D("0.02")),
        Line("C", LineKind.OVERRIDE, 2, 2, D("0.0003"), base, D("0.01")),
    ]
    refunds = [
        reversal_lines(
            lines,
            sale_amount=base,
            refunded_before=D("10.00") * index,
            refund_amount=D("10.00"),
            currency="USD",
        )
        for index in range(3)
    ]
    assert [summary(refund) for refund in refunds] == [
        [("A", 0, 0, "-0.33"), ("B", 1, 1, "-0.01")],
        [("A", 0, 0, "-0.34"), ("C", 2, 2, "-0.01")],
        [("A", 0, 0, "-0.33"), ("B", 1, 1, "-0.01")],
    ]


@pytest.mark.parametrize(
    ("refunded_before", "refund_amount"),
    [("0", "0"), ("0", "-1.00"), ("90.00", "10.01"), ("-1.00", "1.00"), ("100.00", "0.01")],
)
def test_a_refund_cannot_exceed_what_is_left(refunded_before: str, refund_amount: str) -> None:
    with pytest.raises(ValueError, match="refund"):
        reversal_lines(
            original_lines(),
            sale_amount=D("100.00"),
            refunded_before=D(refunded_before),
            refund_amount=D(refund_amount),
            currency="USD",
        )


# Properties over random plans, uplines and sales.

CURRENCIES = st.sampled_from(["USD", "JPY", "KWD"])
STATUSES = st.sampled_from(["active", "active", "active", "inactive", "terminated"])
MILLION = 1_000_000


@st.composite
def rates_summing_to_at_most_one(draw: st.DrawFn) -> list[Decimal]:
    micro = draw(
        st.lists(
            st.one_of(st.just(0), st.integers(0, MILLION // 4), st.integers(0, MILLION)),
            min_size=1,
            max_size=9,
        )
    )
    total = sum(micro)
    if total > MILLION:
        micro = [share * MILLION // total for share in micro]
    return [D(share).scaleb(-6) for share in micro]


@st.composite
def plans(draw: st.DrawFn, currency: str) -> Plan:
    personal_rate, *level_rates = draw(rates_summing_to_at_most_one())
    activity = draw(
        st.none()
        | st.builds(
            ActivityRule,
            st.integers(0, 500).map(lambda units: D(units).scaleb(0)),
            st.integers(1, 366),
        )
    )
    cap = draw(st.none() | st.integers(0, MILLION).map(lambda micro: D(micro).scaleb(-6)))
    del currency
    return Plan(
        categories=(("product", CategoryRates(personal_rate, tuple(level_rates))),),
        compression=draw(st.sampled_from(Compression)),
        activity=activity,
        max_payout_ratio=cap,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Plan, SaleFacts, Participant, list[Participant]]:
    currency = draw(CURRENCIES)
    digits = minor_unit(currency)
    minor_units = draw(
        st.one_of(
            st.integers(0, 200),
            st.integers(0, 10**7),
            st.integers(0, 10 ** (15 + digits) - 1),
        )
    )
    volume = D(minor_units).scaleb(-digits)
    size = draw(st.integers(0, 12))
    # Enrolled up to two days before or after the sale (0: the same instant).
    upline = [
        Participant(
            f"M{index}",
            draw(STATUSES),
            D(draw(st.integers(0, 600))),
            SALE_AT + timedelta(hours=draw(st.sampled_from([-48, -1, 0, 0, 1, 48]))),
        )
        for index in range(size)
    ]
    seller = Participant("S", draw(STATUSES), D(0), ENROLLED)
    sale = SaleFacts("O", "S", volume, "product", currency, SALE_AT)
    return draw(plans(currency)), sale, seller, upline


@settings(max_examples=400)
@given(scenario=scenarios())
def test_calculation_properties(
    scenario: tuple[Plan, SaleFacts, Participant, list[Participant]],
) -> None:
    plan, sale, seller, upline = scenario
    result = calculate(plan, sale, seller, upline)
    assert calculate(plan, sale, seller, upline) == result

    rates = plan.rates_for("product")
    assert rates is not None
    unit = D(1).scaleb(-minor_unit(sale.currency))
    for line in result.lines:
        assert line.amount > 0
        assert line.base == sale.volume
        assert round_money(line.amount, sale.currency) == line.amount
        planned = rates.personal_rate if line.level == 0 else rates.level_rates[line.paid_level - 1]
        assert 0 < line.rate <= planned
        if plan.max_payout_ratio is None:
            assert line.rate == planned
            assert line.amount == round_money(sale.volume * line.rate, sale.currency)
        else:
            assert abs(line.amount - sale.volume * line.rate) < unit

    if plan.max_payout_ratio is not None:
        assert result.total <= sale.volume * plan.max_payout_ratio

    earners = [line.earner_id for line in result.lines]
    assert len(earners) == len(set(earners))
    assert len({(line.earner_id, line.level) for line in result.lines}) == len(result.lines)
    assert [line.level for line in result.lines] == sorted({line.level for line in result.lines})

    personal = [line for line in result.lines if line.kind is LineKind.PERSONAL]
    if seller.status == "terminated":
        assert personal == []
    assert all(line.earner_id == "S" and line.level == 0 for line in personal)

    assert len(result.decisions) <= len(upline)
    for decision, participant in zip(result.decisions, upline, strict=False):
        assert decision.member_id == participant.member_id
        if participant.status == "terminated":
            assert decision.reason in {SkipReason.TERMINATED, SkipReason.BEYOND_DEPTH}
            assert not decision.paid
        elif participant.enrolled_at > sale.occurred_at:
            assert decision.reason in {SkipReason.NOT_YET_ENROLLED, SkipReason.BEYOND_DEPTH}
            assert not decision.paid
            assert decision.paid_level is None
    beyond = [d for d in result.decisions if d.reason is SkipReason.BEYOND_DEPTH]
    assert beyond == [] or beyond == [result.decisions[-1]]

    held = [d.paid_level for d in result.decisions if d.paid_level is not None]
    if plan.compression is Compression.DYNAMIC:
        assert held == list(range(1, len(held) + 1))
    else:
        assert all(d.paid_level in (None, d.level) for d in result.decisions)
    paid = {(d.member_id, d.level, d.paid_level, d.amount) for d in result.decisions if d.paid}
    overrides = {
        (line.earner_id, line.level, line.paid_level, line.amount)
        for line in result.lines
        if line.kind is LineKind.OVERRIDE
    }
    assert paid == overrides


@st.composite
def refund_parts(draw: st.DrawFn, currency: str) -> tuple[Decimal, list[Decimal]]:
    """A sale amount and refunds of it in random parts that add up to all of it."""
    digits = minor_unit(currency)
    total_units = draw(st.integers(2, 10**6) | st.integers(2, 10 ** (15 + digits) - 1))
    cuts = draw(st.lists(st.integers(1, total_units - 1), max_size=5, unique=True))
    points = [0, *sorted(cuts), total_units]
    parts = [later - earlier for earlier, later in pairwise(points)]
    return D(total_units).scaleb(-digits), [D(part).scaleb(-digits) for part in parts]


@settings(max_examples=300)
@given(scenario=scenarios(), data=st.data())
def test_refunds_summing_to_the_sale_net_every_earner_to_zero(
    scenario: tuple[Plan, SaleFacts, Participant, list[Participant]], data: st.DataObject
) -> None:
    plan, sale, seller, upline = scenario
    sale_amount, parts = data.draw(refund_parts(sale.currency))
    lines = calculate(plan, sale, seller, upline).lines
    assert sum(parts) == sale_amount

    taken: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    refunded = D(0)
    for part in parts:
        for reversal in reversal_lines(
            lines,
            sale_amount=sale_amount,
            refunded_before=refunded,
            refund_amount=part,
            currency=sale.currency,
        ):
            assert reversal.amount < 0
            assert reversal.base <= 0
            taken[reversal.earner_id, reversal.level] += reversal.amount
        refunded += part
        for line in lines:
            assert -taken[line.earner_id, line.level] <= line.amount

    assert {key: -amount for key, amount in taken.items()} == {
        (line.earner_id, line.level): line.amount for line in lines
    }


@settings(max_examples=300)
@given(
    currency=CURRENCIES,
    minor_units=st.integers(0, 500),
    rates=rates_summing_to_at_most_one(),
    cap_micro=st.integers(0, MILLION),
    compression=st.sampled_from(Compression),
)
def test_small_sales_never_pay_past_the_cap(
    currency: str,
    minor_units: int,
    rates: list[Decimal],
    cap_micro: int,
    compression: Compression,
) -> None:
    # Small volumes are where half-even rounding most often lifts lines above the cap.
    personal_rate, *level_rates = rates
    cap = D(cap_micro).scaleb(-6)
    plan = Plan(
        categories=(("product", CategoryRates(personal_rate, tuple(level_rates))),),
        compression=compression,
        activity=None,
        max_payout_ratio=cap,
    )
    volume = D(minor_units).scaleb(-minor_unit(currency))
    upline = [member(f"M{index}") for index in range(len(level_rates))]
    sale = SaleFacts("O", "S", volume, "product", currency, SALE_AT)
    result = calculate(plan, sale, member("S"), upline)
    assert result.total <= volume * cap
    assert all(line.amount > 0 for line in result.lines)
