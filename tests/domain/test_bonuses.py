"""Leadership bonuses with worked numbers, and the stair-step property: every unit of
volume pays in differential bonus exactly the highest rate on its way up."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.bonuses import (
    BonusKind,
    BonusLine,
    advancement_bonuses,
    differential_bonuses,
    matching_bonuses,
    pool_bonuses,
)
from service.domain.money import round_money
from service.domain.ranks import MemberVolume, Rank, Standing, decide_ranks

D = Decimal

# Ranks decided by personal volume alone, so each test reads as "who holds what".
R1 = Rank("R1", min_personal_volume=D("100"), differential_rate=D("0.03"))
R2 = Rank(
    "R2",
    min_personal_volume=D("200"),
    differential_rate=D("0.06"),
    matching_rates=(D("0.10"), D("0.05")),
    advancement_bonus=D("50.00"),
    pool_shares=1,
)
R3 = Rank(
    "R3",
    min_personal_volume=D("300"),
    differential_rate=D("0.09"),
    advancement_bonus=D("200.00"),
    pool_shares=2,
)
RANKS = (R1, R2, R3)


def standings_of(
    *rows: tuple[str, str | None, str],
) -> tuple[dict[str, Standing], dict[str, str | None]]:
    members = [MemberVolume(m, s, True, D(pv)) for m, s, pv in rows]
    return decide_ranks(RANKS, members), {m.member_id: m.sponsor_id for m in members}


def summary(lines: list[BonusLine]) -> list[tuple[str, str, int, str, str, str]]:
    return sorted(
        (x.earner_id, x.source_id, x.level, f"{x.base}", f"{x.rate}", f"{x.amount}") for x in lines
    )


def test_a_stair_step_in_one_leg_and_two_legs() -> None:
    # T (R3, PV 300) sponsors S (R2, 200) and D (R3, 400); S -> B (R1, 100) -> C (none, 50);
    # D -> E (R1, 150).
    # C's 50:  B 0.03 -> 1.50 (level 1), S 0.06-0.03 -> 1.50 (2), T 0.09-0.06 -> 1.50 (3).
    # B's 100: B 0.03 -> 3.00 (0), S 0.03 -> 3.00 (1), T 0.03 -> 3.00 (2).
    # S's 200: S 0.06 -> 12.00 (0), T 0.03 -> 6.00 (1).   T's 300: T 0.09 -> 27.00.
    # D's 400: D 0.09 -> 36.00, and T nothing: D's 0.09 is already the highest rate.
    # E's 150: E 0.03 -> 4.50, D 0.06 -> 9.00, T nothing.
    standings, sponsors = standings_of(
        ("T", None, "300"), ("S", "T", "200"), ("B", "S", "100"), ("C", "B", "50"),
        ("D", "T", "400"), ("E", "D", "150"),
    )  # fmt: skip
    lines = differential_bonuses(RANKS, standings, sponsors, "USD")
    assert summary(lines) == sorted(
        [
            ("B", "C", 1, "50", "0.03", "1.50"),
            ("S", "C", 2, "50", "0.03", "1.50"),
            ("T", "C", 3, "50", "0.03", "1.50"),
            ("B", "B", 0, "100", "0.03", "3.00"),
            ("S", "B", 1, "100", "0.03", "3.00"),
            ("T", "B", 2, "100", "0.03", "3.00"),
            ("S", "S", 0, "200", "0.06", "12.00"),
            ("T", "S", 1, "200", "0.03", "6.00"),
            ("T", "T", 0, "300", "0.09", "27.00"),
            ("D", "D", 0, "400", "0.09", "36.00"),
            ("E", "E", 0, "150", "0.03", "4.50"),
            ("D", "E", 1, "150", "0.06", "9.00"),
        ]
    )
    # 0.09 of all 1200 of volume, split by differences: 108.00.
    assert sum(x.amount for x in lines) == D("108.00")
    assert {x.bonus for x in lines} == {BonusKind.DIFFERENTIAL}


def test_a_higher_rank_below_leaves_nothing_for_a_lower_one_above() -> None:
    # T (R2, 200) -> U (R3, 300) -> V (R1, 100). V's 100: V 0.03, U 0.06; T earns nothing on
    # it, nor on U's 300 (U holds 0.09, above T's 0.06).
    standings, sponsors = standings_of(("T", None, "200"), ("U", "T", "300"), ("V", "U", "100"))
    assert summary(differential_bonuses(RANKS, standings, sponsors, "USD")) == sorted(
        [
            ("V", "V", 0, "100", "0.03", "3.00"),
            ("U", "V", 1, "100", "0.06", "6.00"),
            ("U", "U", 0, "300", "0.09", "27.00"),
            ("T", "T", 0, "200", "0.06", "12.00"),
        ]
    )


def test_matching_over_two_generations() -> None:
    # M (R2: matching 0.10, 0.05) -> A -> B -> C. Earned this period: A 100.00, B 40.00,
    # C 500.00 (three generations down: R2 matches two), and N (a direct recruit) -12.00
    # (a debt: only a positive base pays). M: 0.10 x 100.00 = 10.00; 0.05 x 40.00 = 2.00.
    # A and B hold no rank (PV 0) and match nothing.
    standings, sponsors = standings_of(
        ("M", None, "200"), ("A", "M", "0"), ("B", "A", "0"), ("C", "B", "0"), ("N", "M", "0")
    )
    earned = {"A": D("100.00"), "B": D("40.00"), "C": D("500.00"), "N": D("-12.00")}
    lines = matching_bonuses(RANKS, standings, sponsors, earned, "USD")
    assert summary(lines) == [
        ("M", "A", 1, "100.00", "0.10", "10.00"),
        ("M", "B", 2, "40.00", "0.05", "2.00"),
    ]
    assert all(x.rank == "R2" for x in lines)


def test_a_pool_with_a_remainder_never_pays_more_than_it_holds() -> None:
    # Net volume 10,000.00 at 0.01: a pool of 100.00. X and Y hold R2 (1 share each), Z R3
    # (2 shares): 4 shares. X, Y: 100.00 x 1/4 = 25.00; Z: 50.00. All 100.00.
    # With three single shares instead, each 33.333... rounds down to 33.33: 99.99 paid,
    # 0.01 left in no one's hands but the company's.
    standings, _ = standings_of(("X", None, "200"), ("Y", None, "250"), ("Z", None, "300"))
    lines = pool_bonuses(RANKS, standings.values(), D("0.01"), D("10000.00"), "USD")
    assert [(x.earner_id, x.amount, x.shares, x.total_shares) for x in lines] == [
        ("X", D("25.00"), 1, 4),
        ("Y", D("25.00"), 1, 4),
        ("Z", D("50.00"), 2, 4),
    ]
    assert {x.base for x in lines} == {D("100.00")}
    three, _ = standings_of(("X", None, "200"), ("Y", None, "250"), ("W", None, "299"))
    thirds = pool_bonuses(RANKS, three.values(), D("0.01"), D("10000.00"), "USD")
    assert [(x.earner_id, x.amount, x.rate) for x in thirds] == [
        ("W", D("33.33"), D("0.3333333333")),
        ("X", D("33.33"), D("0.3333333333")),
        ("Y", D("33.33"), D("0.3333333333")),
    ]
    assert sum(x.amount for x in thirds) == D("99.99")
    # No net volume, or nobody with shares: no pool.
    assert pool_bonuses(RANKS, three.values(), D("0.01"), D("-5.00"), "USD") == []
    nobody, _ = standings_of(("X", None, "100"))
    assert pool_bonuses(RANKS, nobody.values(), D("0.01"), D("10000.00"), "USD") == []


def test_an_advancement_bonus_is_paid_once_across_closes() -> None:
    # October: A reaches R2 (never ranked before): R2's 50.00 (R1 has none). November: A is
    # R2 again, achieved R2 already: nothing. December: A reaches R3: R3's 200.00 only.
    # B jumps from nothing to R3 at once: both 50.00 and 200.00.
    october, _ = standings_of(("A", None, "200"), ("B", None, "300"))
    paid = advancement_bonuses(RANKS, october.values(), {})
    assert [(x.earner_id, x.rank, x.amount) for x in paid] == [
        ("A", "R2", D("50.00")),
        ("B", "R2", D("50.00")),
        ("B", "R3", D("200.00")),
    ]  # fmt: skip
    november, _ = standings_of(("A", None, "250"))
    assert advancement_bonuses(RANKS, november.values(), {"A": 1}) == []
    december, _ = standings_of(("A", None, "300"))
    paid = advancement_bonuses(RANKS, december.values(), {"A": 1})
    assert [(x.rank, x.amount) for x in paid] == [
        ("R3", D("200.00"))
    ]  # fmt: skip
    # A drops back to R1 and climbs to R2 again: achieved stays R3, nothing more is paid.
    assert advancement_bonuses(RANKS, november.values(), {"A": 2}) == []
    # A plan version that renamed R3: A's achieved rank is one it does not name (None), but
    # R2's bonus, paid before, is not paid again; the renamed rank's is.
    paid = advancement_bonuses(RANKS, december.values(), {"A": None}, {"A": {"R2"}})
    assert [(x.rank, x.amount) for x in paid] == [("R3", D("200.00"))]


@st.composite
def ranked_trees(draw: st.DrawFn) -> list[MemberVolume]:
    size = draw(st.integers(min_value=1, max_value=40))
    return [
        MemberVolume(
            f"M{i}",
            None if i == 0 else f"M{draw(st.integers(0, i - 1))}",
            draw(st.sampled_from([True, True, False])),
            D(draw(st.integers(min_value=-100, max_value=40_000))) / 100,
        )
        for i in range(size)
    ]


@settings(max_examples=300)
@given(members=ranked_trees())
def test_every_unit_of_volume_pays_exactly_the_highest_rate_on_its_way_up(
    members: list[MemberVolume],
) -> None:
    standings = decide_ranks(RANKS, members)
    sponsors = {m.member_id: m.sponsor_id for m in members}
    lines = differential_bonuses(RANKS, standings, sponsors, "USD")
    for member in members:
        on_it = [x for x in lines if x.source_id == member.member_id]
        if member.personal_volume <= 0:
            assert on_it == []
            continue
        highest = D(0)
        walker: str | None = member.member_id
        path: list[str] = []
        steps = []  # where the highest rate so far rises on the way up, and by how much
        while walker is not None:
            path.append(walker)
            rank = standings[walker].rank
            rate = D(0) if rank is None else RANKS[rank].differential_rate or D(0)
            if rate > highest:
                steps.append((walker, rate - highest))
                highest = rate
            walker = sponsors[walker]
        # Every rise is a line, unless its amount rounds to nothing; so the rates add up to
        # the highest rate on the way, less what rounded away.
        paid = [(w, d) for w, d in steps if round_money(member.personal_volume * d, "USD")]
        assert [(x.earner_id, x.rate) for x in on_it] == paid
        if len(paid) == len(steps):
            assert sum((x.rate for x in on_it), D(0)) == highest
        assert all(x.rate > 0 and x.base == member.personal_volume for x in on_it)
        earners = [x.earner_id for x in on_it]
        assert len(set(earners)) == len(earners)
        assert all(x.level == path.index(x.earner_id) for x in on_it)


def test_a_bonus_that_rounds_to_nothing_writes_no_line() -> None:
    # A (R1, 3 %) sponsors B, who sold 0.10: 3 % of 0.10 is 0.003, 0.00 to the cent: no line
    # (A's own 3 % of 100.00 is 3.00). A pool of 1 % of 0.50 is 0.00: no line either.
    standings, sponsors = standings_of(("A", None, "100"), ("B", "A", "0.10"))
    assert summary(differential_bonuses(RANKS, standings, sponsors, "USD")) == [
        ("A", "A", 0, "100", "0.03", "3.00")
    ]
    top, _ = standings_of(("T", None, "300"))
    assert pool_bonuses(RANKS, top.values(), D("0.01"), D("0.50"), "USD") == []
