"""The compensation plan: per-category rates, compression, activity and the payout cap.

`parse_plan` turns the JSON body of `PUT /v1/plan` (without `effective_from`) into an
immutable `Plan`, reporting every problem at once with the path of the offending field.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from service.domain.money import (
    MoneyError,
    format_money,
    format_rate,
    minor_unit,
    parse_money,
    parse_rate,
)

__all__ = [
    "MAX_ACTIVITY_WINDOW_DAYS",
    "MAX_CATEGORIES",
    "MAX_PLAN_DEPTH",
    "ActivityRule",
    "CategoryRates",
    "Compression",
    "Plan",
    "PlanError",
    "parse_plan",
    "plan_to_json",
]

MAX_PLAN_DEPTH = 50
"""A category pays overrides on at most 50 upline levels."""

MAX_CATEGORIES = 100
MAX_ACTIVITY_WINDOW_DAYS = 366

_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

Location = tuple[str | int, ...]


class Compression(StrEnum):
    """What happens to the share of an upline member who is not qualified.

    `none`: the share is not paid. `dynamic`: the member is skipped and the level rolls up
    to the next qualified member above.
    """

    NONE = "none"
    DYNAMIC = "dynamic"


@dataclass(frozen=True, slots=True)
class CategoryRates:
    """Rates for one sale category: the seller's own rate and one rate per upline level.

    `level_rates[0]` is paid to the seller's sponsor (level 1), `level_rates[1]` to the
    sponsor's sponsor, and so on.
    """

    personal_rate: Decimal
    level_rates: tuple[Decimal, ...]

    @property
    def depth(self) -> int:
        """How many upline levels this category pays."""
        return len(self.level_rates)


@dataclass(frozen=True, slots=True)
class ActivityRule:
    """To earn overrides a member needs this much net personal volume in the window of
    `window_days` days before the sale."""

    min_personal_volume: Decimal
    window_days: int


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan version's rules.

    `categories` holds (name, rates) pairs sorted by name, so plans are hashable and
    compare equal regardless of the order the designer wrote them in.
    """

    categories: tuple[tuple[str, CategoryRates], ...]
    compression: Compression
    activity: ActivityRule | None
    max_payout_ratio: Decimal | None
    ranks: tuple[object, ...] = ()
    payout_minimum: Decimal | None = None
    """A member is paid a period's balance (carried in + earned) only once it reaches this
    much; below it, it is carried forward. None: every positive balance is paid."""

    @property
    def depth(self) -> int:
        """The deepest upline level any category pays."""
        return max((rates.depth for _, rates in self.categories), default=0)

    def rates_for(self, category: str) -> CategoryRates | None:
        """The rates of a sale category; a category the plan does not name pays nothing."""
        for name, rates in self.categories:
            if name == category:
                return rates
        return None


class PlanError(ValueError):
    """An invalid plan, with every problem found: (location of the field, message)."""

    code = "invalid_plan"

    def __init__(self, errors: list[tuple[Location, str]]) -> None:
        super().__init__("; ".join(f"{_dotted(loc)}: {message}" for loc, message in errors))
        self.errors = errors


def _dotted(location: Location) -> str:
    return ".".join(str(part) for part in location) or "plan"


class _Problems:
    def __init__(self) -> None:
        self.errors: list[tuple[Location, str]] = []

    def add(self, location: Location, message: str) -> None:
        self.errors.append((location, message))


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _object(
    value: object,
    location: Location,
    problems: _Problems,
    *,
    required: frozenset[str],
    optional: frozenset[str] = frozenset(),
) -> Mapping[str, object] | None:
    """The value as a JSON object with exactly the known keys, or None after reporting."""
    if not isinstance(value, Mapping):
        problems.add(location, f"must be an object, not {_json_kind(value)}")
        return None
    valid = True
    for key in value:
        if not isinstance(key, str) or key not in required | optional:
            problems.add((*location, str(key)), "unknown field")
            valid = False
    for key in sorted(required - value.keys()):
        problems.add((*location, key), "field required")
        valid = False
    return value if valid else None


def _rate(value: object, location: Location, problems: _Problems) -> Decimal | None:
    try:
        return parse_rate(value)
    except MoneyError as exc:
        problems.add(location, str(exc))
        return None


def _category(
    name: str, value: object, location: Location, problems: _Problems
) -> CategoryRates | None:
    valid_name = _CATEGORY_NAME.fullmatch(name) is not None
    if not valid_name:
        problems.add(
            location,
            "category name must be 1-40 characters of a-z, 0-9 and _, starting with a letter",
        )
    body = _object(value, location, problems, required=frozenset({"personal_rate", "level_rates"}))
    if body is None:
        return None
    personal_rate = _rate(body["personal_rate"], (*location, "personal_rate"), problems)
    raw_levels = body["level_rates"]
    levels_location = (*location, "level_rates")
    if not isinstance(raw_levels, list):
        problems.add(levels_location, f"must be an array, not {_json_kind(raw_levels)}")
        return None
    if len(raw_levels) > MAX_PLAN_DEPTH:
        problems.add(levels_location, f"at most {MAX_PLAN_DEPTH} levels are supported")
        return None
    level_rates = [
        _rate(rate, (*levels_location, index), problems) for index, rate in enumerate(raw_levels)
    ]
    if personal_rate is None or any(rate is None for rate in level_rates):
        return None
    rates = CategoryRates(
        personal_rate=personal_rate,
        level_rates=tuple(rate for rate in level_rates if rate is not None),
    )
    total = rates.personal_rate + sum(rates.level_rates, Decimal(0))
    if total > 1:
        problems.add(
            location,
            f"personal_rate and level_rates add up to {format_rate(total)}, more than 1",
        )
        return None
    return rates if valid_name else None


def _categories(value: object, problems: _Problems) -> tuple[tuple[str, CategoryRates], ...] | None:
    location: Location = ("categories",)
    if not isinstance(value, Mapping):
        problems.add(location, f"must be an object, not {_json_kind(value)}")
        return None
    if not value:
        problems.add(location, "at least one category is required")
        return None
    if len(value) > MAX_CATEGORIES:
        problems.add(location, f"at most {MAX_CATEGORIES} categories are supported")
        return None
    parsed: list[tuple[str, CategoryRates]] = []
    complete = True
    for name, body in value.items():
        if not isinstance(name, str):
            problems.add((*location, str(name)), "category name must be a string")
            complete = False
            continue
        rates = _category(name, body, (*location, name), problems)
        if rates is None:
            complete = False
        else:
            parsed.append((name, rates))
    return tuple(sorted(parsed, key=lambda pair: pair[0])) if complete else None


def _compression(value: object, problems: _Problems) -> Compression | None:
    choices = ", ".join(choice.value for choice in Compression)
    if isinstance(value, str) and value in {choice.value for choice in Compression}:
        return Compression(value)
    problems.add(("compression",), f"must be one of: {choices}")
    return None


def _activity(value: object, currency: str, problems: _Problems) -> ActivityRule | None:
    location: Location = ("activity",)
    body = _object(
        value, location, problems, required=frozenset({"min_personal_volume", "window_days"})
    )
    if body is None:
        return None
    min_volume: Decimal | None = None
    try:
        min_volume = parse_money(body["min_personal_volume"], currency)
    except MoneyError as exc:
        problems.add((*location, "min_personal_volume"), str(exc))
    window = body["window_days"]
    if not isinstance(window, int) or isinstance(window, bool):
        problems.add((*location, "window_days"), f"must be an integer, not {_json_kind(window)}")
        return None
    if not 1 <= window <= MAX_ACTIVITY_WINDOW_DAYS:
        problems.add(
            (*location, "window_days"), f"must be from 1 to {MAX_ACTIVITY_WINDOW_DAYS} days"
        )
        return None
    if min_volume is None:
        return None
    return ActivityRule(min_personal_volume=min_volume, window_days=window)


_TOP_LEVEL_REQUIRED = frozenset({"categories"})
_TOP_LEVEL_OPTIONAL = frozenset({"compression", "activity", "max_payout_ratio", "ranks", "payout"})


def _payout_minimum(value: object, currency: str, problems: _Problems) -> Decimal | None:
    location: Location = ("payout",)
    body = _object(value, location, problems, required=frozenset(), optional=frozenset({"minimum"}))
    if body is None or body.get("minimum") is None:
        return None
    try:
        return parse_money(body["minimum"], currency, allow_zero=True)
    except MoneyError as exc:
        problems.add((*location, "minimum"), str(exc))
        return None


def parse_plan(raw: Mapping[str, object], currency: str) -> Plan:
    """A plan from its JSON body, or a `PlanError` listing every invalid field.

    Rules: at least one category, each named `[a-z][a-z0-9_]{0,39}` with a `personal_rate`
    and up to 50 `level_rates`, all rates decimal strings in [0, 1] whose sum per category
    is at most 1; `compression` is "none" (default) or "dynamic"; `activity` (optional or
    null) has `min_personal_volume` (money in the program currency) and `window_days`
    (1-366); `max_payout_ratio` (optional or null) is a rate; `ranks` must be empty for now;
    `payout` (optional or null) may set `minimum`, money in the program currency.
    Unknown fields and JSON numbers where strings are expected are errors.
    """
    minor_unit(currency)
    problems = _Problems()
    _object(raw, (), problems, required=_TOP_LEVEL_REQUIRED, optional=_TOP_LEVEL_OPTIONAL)
    if not isinstance(raw, Mapping):
        raise PlanError(problems.errors)

    categories = _categories(raw["categories"], problems) if "categories" in raw else None
    compression = _compression(raw.get("compression", Compression.NONE.value), problems)
    activity_value = raw.get("activity")
    activity = None if activity_value is None else _activity(activity_value, currency, problems)
    ratio_value = raw.get("max_payout_ratio")
    max_payout_ratio = (
        None if ratio_value is None else _rate(ratio_value, ("max_payout_ratio",), problems)
    )
    payout_value = raw.get("payout")
    payout_minimum = (
        None if payout_value is None else _payout_minimum(payout_value, currency, problems)
    )
    ranks = raw.get("ranks", [])
    if not isinstance(ranks, list):
        problems.add(("ranks",), f"must be an array, not {_json_kind(ranks)}")
    elif ranks:
        problems.add(("ranks",), "ranks are not supported yet")

    if problems.errors or categories is None or compression is None:
        raise PlanError(problems.errors or [((), "invalid plan")])
    return Plan(
        categories=categories,
        compression=compression,
        activity=activity,
        max_payout_ratio=max_payout_ratio,
        ranks=(),
        payout_minimum=payout_minimum,
    )


def plan_to_json(plan: Plan, currency: str) -> dict[str, object]:
    """The canonical JSON form of a plan (as `parse_plan` accepts it), for echoing back.

    Rates are strings without trailing zeros; the activity volume has exactly the
    currency's digits. The program currency is needed because the plan does not carry it.
    """
    activity: dict[str, object] | None = None
    if plan.activity is not None:
        activity = {
            "min_personal_volume": format_money(plan.activity.min_personal_volume, currency),
            "window_days": plan.activity.window_days,
        }
    canonical: dict[str, object] = {
        "categories": {
            name: {
                "personal_rate": format_rate(rates.personal_rate),
                "level_rates": [format_rate(rate) for rate in rates.level_rates],
            }
            for name, rates in plan.categories
        },
        "compression": plan.compression.value,
        "activity": activity,
        "max_payout_ratio": (
            None if plan.max_payout_ratio is None else format_rate(plan.max_payout_ratio)
        ),
        "ranks": [],
    }
    if plan.payout_minimum is not None:  # absent otherwise: older versions stay as stored
        canonical["payout"] = {"minimum": format_money(plan.payout_minimum, currency)}
    return canonical
