import copy
import json
from dataclasses import replace
from decimal import Decimal

import pytest

from service.domain.money import MoneyError
from service.domain.plan import (
    ActivityRule,
    CategoryRates,
    Compression,
    Plan,
    PlanError,
    parse_plan,
    plan_to_json,
)
from service.domain.ranks import LegRule, Rank

D = Decimal

SPEC_EXAMPLE = json.loads(
    """
    {
      "categories": {
        "product":        {"personal_rate": "0.10", "level_rates": ["0.05", "0.03", "0.02"]},
        "enrollment_fee": {"personal_rate": "0",    "level_rates": ["0.20", "0.05", "0.04"]}
      },
      "compression": "none",
      "activity": {"min_personal_volume": "100.00", "window_days": 30},
      "max_payout_ratio": "0.60",
      "ranks": []
    }
    """
)


def errors_of(raw: object, currency: str = "USD") -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(PlanError) as caught:
        parse_plan(raw, currency)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_plan"
    return caught.value.errors


def locations_of(raw: object, currency: str = "USD") -> list[tuple[str | int, ...]]:
    return [location for location, _ in errors_of(raw, currency)]


def with_change(path: tuple[str, ...], value: object) -> dict[str, object]:
    raw: dict[str, object] = copy.deepcopy(SPEC_EXAMPLE)
    target: dict[str, object] = raw
    for key in path[:-1]:
        child = target[key]
        assert isinstance(child, dict)
        target = child
    target[path[-1]] = value
    return raw


def without(key: str) -> dict[str, object]:
    raw: dict[str, object] = copy.deepcopy(SPEC_EXAMPLE)
    del raw[key]
    return raw


def test_the_spec_example_parses() -> None:
    plan = parse_plan(SPEC_EXAMPLE, "USD")
    assert plan == Plan(
        categories=(
            (
                "enrollment_fee",
                CategoryRates(Decimal("0"), tuple(map(Decimal, ["0.20", "0.05", "0.04"]))),
            ),
            (
                "product",
                CategoryRates(Decimal("0.10"), tuple(map(Decimal, ["0.05", "0.03", "0.02"]))),
            ),
        ),
        compression=Compression.NONE,
        activity=ActivityRule(min_personal_volume=Decimal("100.00"), window_days=30),
        max_payout_ratio=Decimal("0.60"),
    )
    assert plan.depth == 3
    assert plan.rates_for("product") == CategoryRates(
        Decimal("0.1"), (Decimal("0.05"), Decimal("0.03"), Decimal("0.02"))
    )
    assert plan.rates_for("subscription") is None


def test_the_canonical_form_round_trips() -> None:
    plan = parse_plan(SPEC_EXAMPLE, "USD")
    canonical = plan_to_json(plan, "USD")
    assert canonical == {
        "categories": {
            "enrollment_fee": {"personal_rate": "0.00", "level_rates": ["0.20", "0.05", "0.04"]},
            "product": {"personal_rate": "0.10", "level_rates": ["0.05", "0.03", "0.02"]},
        },
        "compression": "none",
        "activity": {"min_personal_volume": "100.00", "window_days": 30},
        "max_payout_ratio": "0.60",
        "ranks": [],
    }
    assert parse_plan(canonical, "USD") == plan
    assert json.loads(json.dumps(canonical)) == canonical


def test_optional_fields_take_their_defaults() -> None:
    plan = parse_plan(
        {"categories": {"product": {"personal_rate": "0.1", "level_rates": []}}}, "JPY"
    )
    assert plan.compression is Compression.NONE
    assert plan.activity is None
    assert plan.max_payout_ratio is None
    assert plan.ranks == ()
    assert plan.depth == 0
    assert plan_to_json(plan, "JPY")["activity"] is None
    assert plan_to_json(plan, "JPY")["max_payout_ratio"] is None


def test_null_activity_and_cap_mean_none() -> None:
    plan = parse_plan(with_change(("activity",), None) | {"max_payout_ratio": None}, "USD")
    assert plan.activity is None
    assert plan.max_payout_ratio is None


def test_dynamic_compression() -> None:
    assert parse_plan(with_change(("compression",), "dynamic"), "USD").compression is (
        Compression.DYNAMIC
    )


def test_activity_volume_is_money_in_the_program_currency() -> None:
    raw = with_change(("activity", "min_personal_volume"), "1500")
    plan = parse_plan(raw, "JPY")
    assert plan.activity == ActivityRule(Decimal("1500"), 30)
    assert plan_to_json(plan, "JPY")["activity"] == {
        "min_personal_volume": "1500",
        "window_days": 30,
    }
    assert locations_of(with_change(("activity", "min_personal_volume"), "100.50"), "JPY") == [
        ("activity", "min_personal_volume")
    ]


def test_fifty_levels_are_allowed() -> None:
    raw = with_change(
        ("categories",), {"product": {"personal_rate": "0", "level_rates": ["0.01"] * 50}}
    )
    assert parse_plan(raw, "USD").depth == 50


NO_RATES = {"personal_rate": "0", "level_rates": []}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("effective_from",), "2026-01-01T00:00:00Z"),
        (("bonus",), "x"),
        (("categories", "product", "cap"), "0.1"),
        (("activity", "days"), 30),
        (("categories",), {}),
        (("categories",), []),
        (("categories", "Product"), NO_RATES),
        (("categories", "9lives"), NO_RATES),
        (("categories", "a" * 41), NO_RATES),
        (("categories", "product"), "0.1"),
        (("categories", "product", "personal_rate"), 0.1),
        (("categories", "product", "personal_rate"), "1.5"),
        (("categories", "product", "personal_rate"), "-0.1"),
        (("categories", "product", "personal_rate"), "0.1234567"),
        (("categories", "product", "level_rates"), "0.05"),
        (("categories", "product", "level_rates"), ["0.01"] * 51),
        (("compression",), "full"),
        (("compression",), None),
        (("activity",), "monthly"),
        (("activity", "min_personal_volume"), 100),
        (("activity", "min_personal_volume"), "100.001"),
        (("activity", "window_days"), 0),
        (("activity", "window_days"), 367),
        (("activity", "window_days"), 30.0),
        (("activity", "window_days"), "30"),
        (("activity", "window_days"), True),
        (("max_payout_ratio",), 0.6),
        (("max_payout_ratio",), "1.01"),
        (("ranks",), None),
    ],
)
def test_an_invalid_value_is_reported_at_its_field(path: tuple[str, ...], value: object) -> None:
    assert locations_of(with_change(path, value)) == [path]


@pytest.mark.parametrize(
    ("raw", "location"),
    [
        (without("categories"), ("categories",)),
        (
            with_change(("categories", "product"), {"personal_rate": "0.1"}),
            ("categories", "product", "level_rates"),
        ),
        (
            with_change(("categories", "product"), {"level_rates": []}),
            ("categories", "product", "personal_rate"),
        ),
        (
            with_change(("categories", "product", "level_rates"), ["0.05", "0.03", 0.02]),
            ("categories", "product", "level_rates", 2),
        ),
        (
            with_change(("categories", "product", "level_rates"), ["0.5", "0.3", "0.2"]),
            ("categories", "product"),
        ),
    ],
)
def test_a_missing_or_inconsistent_field_is_named(
    raw: dict[str, object], location: tuple[str | int, ...]
) -> None:
    assert locations_of(raw) == [location]


def test_rates_summing_past_one_are_reported_with_their_total() -> None:
    raw = with_change(
        ("categories", "product"), {"personal_rate": "0.5", "level_rates": ["0.3", "0.25"]}
    )
    assert errors_of(raw) == [
        (("categories", "product"), "personal_rate and level_rates add up to 1.05, more than 1")
    ]


# The ranks of the product's example plan: every requirement and every reward.
RANKS_EXAMPLE = json.loads(
    """
    {
      "ranks": [
        {"name": "Bronze", "min_personal_volume": "100.00", "differential_rate": "0.03"},
        {"name": "Silver", "min_personal_volume": "100.00", "min_organization_volume": "1000.00",
         "unlocked_levels": 5, "differential_rate": "0.06", "matching_rates": ["0.10"],
         "advancement_bonus": "100.00"},
        {"name": "Gold", "min_personal_volume": "100.00", "min_organization_volume": "5000.00",
         "max_leg_share": "0.40", "min_legs": {"count": 2, "rank": "Silver"},
         "min_active_recruits": 3, "unlocked_levels": 10, "differential_rate": "0.09",
         "matching_rates": ["0.10", "0.05"], "pool_shares": 1, "advancement_bonus": "500.00"}
      ],
      "unranked_levels": 3,
      "leadership_pool": {"rate": "0.01"},
      "payout": {"minimum": "25.00"}
    }
    """
)


def with_ranks(*changes: tuple[tuple[str | int, ...], object]) -> dict[str, object]:
    """The example plan with the example ranks, each change setting (or, with the value
    DELETE, removing) one field under `ranks`, `unranked_levels` or `leadership_pool`."""
    raw: dict[str, object] = {**copy.deepcopy(SPEC_EXAMPLE), **copy.deepcopy(RANKS_EXAMPLE)}
    for path, value in changes:
        target: object = raw
        for key in path[:-1]:
            target = target[key]  # type: ignore[index]
        if value is DELETE:
            del target[path[-1]]  # type: ignore[attr-defined]
        else:
            target[path[-1]] = value  # type: ignore[index]
    return raw


DELETE = object()


def test_the_example_ranks_parse_field_by_field_and_round_trip() -> None:
    plan = parse_plan(with_ranks(), "USD")
    assert plan.ranks == (
        Rank("Bronze", min_personal_volume=D("100.00"), differential_rate=D("0.03")),
        Rank(
            "Silver",
            min_personal_volume=D("100.00"),
            min_organization_volume=D("1000.00"),
            unlocked_levels=5,
            differential_rate=D("0.06"),
            matching_rates=(D("0.10"),),
            advancement_bonus=D("100.00"),
        ),
        Rank(
            "Gold",
            min_personal_volume=D("100.00"),
            min_organization_volume=D("5000.00"),
            max_leg_share=D("0.40"),
            min_legs=LegRule(count=2, rank=1),
            min_active_recruits=3,
            unlocked_levels=10,
            differential_rate=D("0.09"),
            matching_rates=(D("0.10"), D("0.05")),
            pool_shares=1,
            advancement_bonus=D("500.00"),
        ),
    )
    assert (plan.unranked_levels, plan.leadership_pool_rate) == (3, D("0.01"))
    canonical = plan_to_json(plan, "USD")
    assert canonical["ranks"][2] == {  # type: ignore[index]
        "name": "Gold",
        "min_personal_volume": "100.00",
        "min_organization_volume": "5000.00",
        "max_leg_share": "0.40",
        "min_legs": {"count": 2, "rank": "Silver"},
        "min_active_recruits": 3,
        "unlocked_levels": 10,
        "differential_rate": "0.09",
        "matching_rates": ["0.10", "0.05"],
        "pool_shares": 1,
        "advancement_bonus": "500.00",
    }
    assert (canonical["unranked_levels"], canonical["leadership_pool"]) == (3, {"rate": "0.01"})
    assert parse_plan(canonical, "USD") == plan
    by_volume = with_ranks((("ranks", 2, "min_legs"), {"count": 2, "volume": "500"}))
    legs = plan_to_json(parse_plan(by_volume, "USD"), "USD")["ranks"][2]["min_legs"]  # type: ignore[index]
    assert legs == {"count": 2, "volume": "500.00"}
    assert parse_plan(with_change(("ranks",), [{"name": "gold"}]), "USD").ranks == (Rank("gold"),)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("ranks", 0, "name"), ""),
        (("ranks", 0, "name"), " Bronze"),
        (("ranks", 0, "name"), "x" * 41),
        (("ranks", 0, "name"), "Bro\u0000nze"),
        (("ranks", 0, "name"), 7),
        (("ranks", 0, "min_personal_volume"), 100),
        (("ranks", 0, "min_personal_volume"), "100.001"),
        (("ranks", 1, "min_organization_volume"), "-1"),
        (("ranks", 2, "max_leg_share"), "1.5"),
        (("ranks", 2, "max_leg_share"), "0"),
        (("ranks", 2, "min_legs", "count"), 0),
        (("ranks", 2, "min_legs", "count"), "2"),
        (("ranks", 2, "min_legs", "rank"), "Platinum"),
        (("ranks", 2, "min_legs", "rank"), "Gold"),
        (("ranks", 2, "min_active_recruits"), 0),
        (("ranks", 2, "min_active_recruits"), 2.5),
        (("ranks", 1, "unlocked_levels"), 51),
        (("ranks", 1, "unlocked_levels"), True),
        (("ranks", 2, "differential_rate"), "1.01"),
        (("ranks", 2, "differential_rate"), "0.05"),
        (("ranks", 1, "matching_rates"), []),
        (("ranks", 1, "matching_rates"), "0.10"),
        (("ranks", 2, "pool_shares"), 0),
        (("ranks", 1, "advancement_bonus"), "0"),
        (("ranks", 1, "advancement_bonus"), "1.001"),
        (("ranks", 1, "bonus"), "1.00"),
        (("unranked_levels",), -1),
        (("unranked_levels",), "3"),
        (("leadership_pool", "rate"), "2"),
    ],
)
def test_a_bad_rank_field_is_named(path: tuple[str | int, ...], value: object) -> None:
    assert locations_of(with_ranks((path, value))) == [path]


def test_rules_between_ranks_are_named_with_what_is_wrong() -> None:
    assert errors_of(with_ranks((("ranks", 1, "name"), "Bronze"))) == [
        (("ranks", 1, "name"), "rank 'Bronze' is named twice"),
        # Gold's min_legs names "Silver", which no longer exists
        (("ranks", 2, "min_legs", "rank"), "must name a rank of this plan"),
    ]
    assert errors_of(with_ranks((("ranks", 2, "min_legs", "rank"), "Gold"))) == [
        (
            ("ranks", 2, "min_legs", "rank"),
            "must name a rank lower than this one (ranks are lowest first)",
        )
    ]
    assert errors_of(with_ranks((("ranks", 2, "min_legs", "volume"), "10.00"))) == [
        (("ranks", 2, "min_legs"), "must set either rank or volume, not both or neither")
    ]
    assert errors_of(with_ranks((("ranks", 2, "differential_rate"), "0.05"))) == [
        (
            ("ranks", 2, "differential_rate"),
            "must be at least 0.06, the rate of 'Silver' below it (stair-step rates never fall)",
        )
    ]
    # A rank above one that sets a differential rate must set one too (none would pay 0).
    assert locations_of(with_ranks((("ranks", 2, "differential_rate"), DELETE))) == [
        ("ranks", 2, "differential_rate")
    ]
    # Requirements need not nest: Silver without an organization volume is a valid plan.
    silver = parse_plan(with_ranks((("ranks", 1, "min_organization_volume"), DELETE)), "USD")
    assert silver.ranks[1].min_organization_volume is None
    assert errors_of(with_ranks((("ranks", 2, "min_organization_volume"), DELETE))) == [
        (("ranks", 2, "max_leg_share"), "needs min_organization_volume, whose share it caps")
    ]


def test_the_pool_and_rank_gated_depth_need_ranks_that_use_them() -> None:
    assert errors_of(with_ranks((("leadership_pool",), DELETE))) == [
        (("ranks", 2, "pool_shares"), "needs the plan's leadership_pool")
    ]
    assert errors_of(with_ranks((("ranks", 2, "pool_shares"), DELETE))) == [
        (("leadership_pool",), "no rank sets pool_shares, so nobody would be paid it")
    ]
    gated = with_ranks(
        (("ranks", 1, "unlocked_levels"), DELETE), (("ranks", 2, "unlocked_levels"), DELETE)
    )
    assert errors_of(gated) == [
        (("unranked_levels",), "no rank sets unlocked_levels, so depth is not gated by rank")
    ]
    assert locations_of(with_change(("unranked_levels",), 3)) == [("unranked_levels",)]
    assert locations_of(with_change(("leadership_pool",), {"rate": "0.01"})) == [
        ("leadership_pool",)
    ]
    assert locations_of(with_change(("ranks",), [{"name": f"R{i}"} for i in range(51)])) == [
        ("ranks",)
    ]


def test_every_error_is_reported_at_once() -> None:
    raw = {
        "categories": {
            "product": {"personal_rate": 0.1, "level_rates": ["0.05", "2"]},
            "Bad": {"personal_rate": "0", "level_rates": []},
        },
        "compression": "sometimes",
        "activity": {"min_personal_volume": "1.001", "window_days": 0},
        "max_payout_ratio": "x",
        "ranks": ["gold"],
        "effective_from": "2026-01-01T00:00:00Z",
    }
    assert locations_of(raw) == [
        ("effective_from",),
        ("categories", "product", "personal_rate"),
        ("categories", "product", "level_rates", 1),
        ("categories", "Bad"),
        ("compression",),
        ("activity", "min_personal_volume"),
        ("activity", "window_days"),
        ("max_payout_ratio",),
        ("ranks", 0),
    ]


def test_a_plan_must_be_an_object() -> None:
    assert locations_of(["categories"]) == [()]


def test_error_messages_say_what_is_wrong() -> None:
    errors = dict(errors_of(with_change(("categories", "product", "personal_rate"), 0.1)))
    message = errors["categories", "product", "personal_rate"]
    assert "string" in message
    assert "JSON number" in message
    assert str(PlanError(errors_of(with_change(("bonus",), 1)))) == "bonus: unknown field"


def test_the_program_currency_must_be_known() -> None:
    with pytest.raises(MoneyError):
        parse_plan(SPEC_EXAMPLE, "XYZ")


def test_plans_are_immutable_and_hashable() -> None:
    plan = parse_plan(SPEC_EXAMPLE, "USD")
    assert hash(plan) == hash(parse_plan(copy.deepcopy(SPEC_EXAMPLE), "USD"))
    with pytest.raises(AttributeError):
        plan.compression = Compression.DYNAMIC  # type: ignore[misc]


def test_the_levels_a_rank_in_force_unlocks() -> None:
    # Bronze sets no unlocked_levels, Silver 5, Gold 10; unranked_levels 3. A rank this
    # version does not name (renamed since) counts as no rank.
    ranks = (Rank("Bronze"), Rank("Silver", unlocked_levels=5), Rank("Gold", unlocked_levels=10))
    plan = Plan(
        categories=(),
        compression=Compression.NONE,
        activity=None,
        max_payout_ratio=None,
        ranks=ranks,
        unranked_levels=3,
    )
    assert plan.rank_gated
    unlocked = {
        name: plan.levels_unlocked_for(name) for name in (None, "Bronze", "Silver", "Gold", "Tin")
    }
    assert unlocked == {None: 3, "Bronze": 3, "Silver": 5, "Gold": 10, "Tin": 3}
    # Without unranked_levels a member with no rank earns at every level.
    assert replace(plan, unranked_levels=None).levels_unlocked_for(None) is None
    # No rank unlocks levels: the plan is not rank-gated, every level for everyone.
    flat = replace(plan, ranks=(Rank("Bronze"),), unranked_levels=None)
    assert not flat.rank_gated
    assert flat.levels_unlocked_for("Bronze") is None
