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
from service.domain.ranks import LegRule, Rank

__all__ = [
    "MAX_ACTIVITY_WINDOW_DAYS",
    "MAX_CATEGORIES",
    "MAX_PLAN_DEPTH",
    "MAX_RANKS",
    "MAX_RANK_NAME",
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
MAX_RANKS = 50
MAX_RANK_NAME = 40
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
    ranks: tuple[Rank, ...] = ()
    """Lowest first; a `LegRule.rank` is an index into it."""
    payout_minimum: Decimal | None = None
    """A member is paid a period's balance (carried in + earned) only once it reaches this
    much; below it, it is carried forward. None: every positive balance is paid."""
    unranked_levels: int | None = None
    """With rank-gated depth (a rank sets `unlocked_levels`): how deep a member without a
    rank in force, or with a rank that sets none, earns overrides. None: every level."""
    leadership_pool_rate: Decimal | None = None
    """The share of the period's net volume that the leadership pool pays out."""

    @property
    def depth(self) -> int:
        """The deepest upline level any category pays."""
        return max((rates.depth for _, rates in self.categories), default=0)

    @property
    def rank_gated(self) -> bool:
        """Whether overrides are gated by rank: some rank sets `unlocked_levels`."""
        return any(rank.unlocked_levels is not None for rank in self.ranks)

    def levels_unlocked_for(self, rank_in_force: str | None) -> int | None:
        """How deep a member whose rank in force is `rank_in_force` (a rank's name, None:
        no rank) earns overrides: their rank's `unlocked_levels`, else `unranked_levels`
        (also for a rank this version does not name). None: every level (the plan is not
        rank-gated, or sets no `unranked_levels`)."""
        if not self.rank_gated:
            return None
        for rank in self.ranks:
            if rank.name == rank_in_force and rank.unlocked_levels is not None:
                return rank.unlocked_levels
        return self.unranked_levels

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


_RANK_FIELDS = frozenset(
    {
        "min_personal_volume",
        "min_organization_volume",
        "max_leg_share",
        "min_legs",
        "min_active_recruits",
        "unlocked_levels",
        "differential_rate",
        "matching_rates",
        "pool_shares",
        "advancement_bonus",
    }
)


def _count(
    value: object, location: Location, problems: _Problems, *, low: int, high: int
) -> int | None:
    """A JSON integer in [low, high], or None after reporting."""
    if not isinstance(value, int) or isinstance(value, bool):
        problems.add(location, f"must be an integer, not {_json_kind(value)}")
        return None
    if not low <= value <= high:
        problems.add(location, f"must be from {low} to {high}")
        return None
    return value


def _money(
    value: object, currency: str, location: Location, problems: _Problems, *, allow_zero: bool
) -> Decimal | None:
    try:
        return parse_money(value, currency, allow_zero=allow_zero)
    except MoneyError as exc:
        problems.add(location, str(exc))
        return None


def _rank_name(value: object, location: Location, problems: _Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(location, f"must be a string, not {_json_kind(value)}")
        return None
    if not 1 <= len(value) <= MAX_RANK_NAME or value != value.strip():
        problems.add(
            location,
            f"must be 1-{MAX_RANK_NAME} characters without leading or trailing spaces",
        )
        return None
    if not value.isprintable():
        problems.add(location, "must hold printable characters only")
        return None
    return value


class _RankParser:
    """The `ranks` of a plan, lowest first: each rank's fields, and the rules between
    ranks (unique names, `min_legs` naming a lower rank, `differential_rate` never lower
    than a rank below it sets)."""

    def __init__(self, currency: str, problems: _Problems) -> None:
        self.currency = currency
        self.problems = problems
        self.names: list[str | None] = []

    def parse(self, value: object) -> tuple[Rank, ...] | None:
        location: Location = ("ranks",)
        if not isinstance(value, list):
            self.problems.add(location, f"must be an array, not {_json_kind(value)}")
            return None
        if len(value) > MAX_RANKS:
            self.problems.add(location, f"at most {MAX_RANKS} ranks are supported")
            return None
        raw_names = [body.get("name") if isinstance(body, Mapping) else None for body in value]
        parsed = [self._rank(index, body, raw_names) for index, body in enumerate(value)]
        ranks = [rank for rank in parsed if rank is not None]
        if len(ranks) != len(parsed):
            return None
        self._differential_never_falls(ranks)
        return tuple(ranks)

    def _rank(self, index: int, value: object, raw_names: list[object]) -> Rank | None:
        location: Location = ("ranks", index)
        body = _object(
            value, location, self.problems, required=frozenset({"name"}), optional=_RANK_FIELDS
        )
        if body is None:
            return None
        errors_before = len(self.problems.errors)
        name = _rank_name(body["name"], (*location, "name"), self.problems)
        if name is not None and name in raw_names[:index]:
            self.problems.add((*location, "name"), f"rank {name!r} is named twice")
        field = _RankFields(self, body, location)
        volume = field.money("min_organization_volume", allow_zero=True)
        share = field.share("max_leg_share")
        if share is not None and volume is None and "min_organization_volume" not in body:
            self.problems.add(
                (*location, "max_leg_share"), "needs min_organization_volume, whose share it caps"
            )
        rank = Rank(
            name=name or "",
            min_personal_volume=field.money("min_personal_volume", allow_zero=True),
            min_organization_volume=volume,
            max_leg_share=share,
            min_legs=self._legs(body.get("min_legs"), index, raw_names, (*location, "min_legs")),
            min_active_recruits=field.count("min_active_recruits", low=1, high=1_000_000),
            unlocked_levels=field.count("unlocked_levels", low=0, high=MAX_PLAN_DEPTH),
            differential_rate=field.rate("differential_rate"),
            matching_rates=field.rates("matching_rates"),
            pool_shares=field.count("pool_shares", low=1, high=1_000_000),
            advancement_bonus=field.money("advancement_bonus", allow_zero=False),
        )
        return rank if len(self.problems.errors) == errors_before else None

    def _legs(
        self, value: object, index: int, raw_names: list[object], location: Location
    ) -> LegRule | None:
        if value is None:
            return None
        body = _object(
            value,
            location,
            self.problems,
            required=frozenset({"count"}),
            optional=frozenset({"rank", "volume"}),
        )
        if body is None:
            return None
        count = _count(body["count"], (*location, "count"), self.problems, low=1, high=1_000_000)
        if ("rank" in body) == ("volume" in body):
            self.problems.add(location, "must set either rank or volume, not both or neither")
            return None
        if "volume" in body:
            volume = _money(
                body["volume"],
                self.currency,
                (*location, "volume"),
                self.problems,
                allow_zero=False,
            )
            return None if count is None or volume is None else LegRule(count, volume=volume)
        wanted = body["rank"]
        if not isinstance(wanted, str) or wanted not in raw_names:
            self.problems.add((*location, "rank"), "must name a rank of this plan")
            return None
        lower = raw_names.index(wanted)
        if lower >= index:
            self.problems.add(
                (*location, "rank"), "must name a rank lower than this one (ranks are lowest first)"
            )
            return None
        return None if count is None else LegRule(count, rank=lower)

    def _differential_never_falls(self, ranks: list[Rank]) -> None:
        highest: Rank | None = None
        for index, rank in enumerate(ranks):
            if highest is not None and highest.differential_rate is not None:
                rate = rank.differential_rate
                if rate is None or rate < highest.differential_rate:
                    self.problems.add(
                        ("ranks", index, "differential_rate"),
                        f"must be at least {format_rate(highest.differential_rate)}, the rate "
                        f"of {highest.name!r} below it (stair-step rates never fall)",
                    )
                    continue
            if rank.differential_rate is not None:
                highest = rank


class _RankFields:
    """The optional fields of one rank's body, each parsed or reported at its path."""

    def __init__(self, parser: _RankParser, body: Mapping[str, object], location: Location):
        self.parser = parser
        self.body = body
        self.location = location

    def money(self, key: str, *, allow_zero: bool) -> Decimal | None:
        value = self.body.get(key)
        if value is None:
            return None
        return _money(
            value,
            self.parser.currency,
            (*self.location, key),
            self.parser.problems,
            allow_zero=allow_zero,
        )

    def count(self, key: str, *, low: int, high: int) -> int | None:
        value = self.body.get(key)
        if value is None:
            return None
        return _count(value, (*self.location, key), self.parser.problems, low=low, high=high)

    def rate(self, key: str) -> Decimal | None:
        value = self.body.get(key)
        return None if value is None else _rate(value, (*self.location, key), self.parser.problems)

    def share(self, key: str) -> Decimal | None:
        rate = self.rate(key)
        if rate is not None and rate.is_zero():
            self.parser.problems.add((*self.location, key), "must be more than 0")
            return None
        return rate

    def rates(self, key: str) -> tuple[Decimal, ...]:
        value = self.body.get(key)
        if value is None:
            return ()
        location = (*self.location, key)
        if not isinstance(value, list) or not value:
            self.parser.problems.add(location, "must be a non-empty array of rates")
            return ()
        if len(value) > MAX_PLAN_DEPTH:
            self.parser.problems.add(location, f"at most {MAX_PLAN_DEPTH} generations")
            return ()
        rates = [_rate(rate, (*location, g), self.parser.problems) for g, rate in enumerate(value)]
        return tuple(rate for rate in rates if rate is not None)


def _leadership_pool(value: object, problems: _Problems) -> Decimal | None:
    location: Location = ("leadership_pool",)
    body = _object(value, location, problems, required=frozenset({"rate"}))
    return None if body is None else _rate(body["rate"], (*location, "rate"), problems)


def _ranks_agree_with_plan(
    ranks: tuple[Rank, ...],
    unranked_levels: int | None,
    pool_rate: Decimal | None,
    problems: _Problems,
) -> None:
    """Fields that only mean something together: a pool needs ranks with shares of it, and
    shares need a pool; `unranked_levels` only applies when some rank unlocks levels."""
    sharing = [index for index, rank in enumerate(ranks) if rank.pool_shares is not None]
    if pool_rate is not None and not sharing:
        problems.add(("leadership_pool",), "no rank sets pool_shares, so nobody would be paid it")
    if pool_rate is None:
        for index in sharing:
            problems.add(("ranks", index, "pool_shares"), "needs the plan's leadership_pool")
    if unranked_levels is not None and all(rank.unlocked_levels is None for rank in ranks):
        problems.add(
            ("unranked_levels",), "no rank sets unlocked_levels, so depth is not gated by rank"
        )


_TOP_LEVEL_REQUIRED = frozenset({"categories"})
_TOP_LEVEL_OPTIONAL = frozenset(
    {
        "compression",
        "activity",
        "max_payout_ratio",
        "ranks",
        "unranked_levels",
        "leadership_pool",
        "payout",
    }
)


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
    (1-366); `max_payout_ratio` (optional or null) is a rate; `payout` (optional or null)
    may set `minimum`, money in the program currency. `ranks` (lowest first),
    `unranked_levels` and `leadership_pool` are validated field by field; a plan that sets
    ranks is refused until the close decides them.
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
    ranks = _RankParser(currency, problems).parse(raw.get("ranks", []))
    unranked_value = raw.get("unranked_levels")
    unranked_levels = (
        None
        if unranked_value is None
        else _count(unranked_value, ("unranked_levels",), problems, low=0, high=MAX_PLAN_DEPTH)
    )
    pool_value = raw.get("leadership_pool")
    pool_rate = None if pool_value is None else _leadership_pool(pool_value, problems)
    each_valid = (unranked_value is None or unranked_levels is not None) and (
        pool_value is None or pool_rate is not None
    )
    if ranks is not None and each_valid:
        _ranks_agree_with_plan(ranks, unranked_levels, pool_rate, problems)
    if problems.errors or categories is None or compression is None:
        raise PlanError(problems.errors or [((), "invalid plan")])
    return Plan(
        categories=categories,
        compression=compression,
        activity=activity,
        max_payout_ratio=max_payout_ratio,
        ranks=ranks or (),
        payout_minimum=payout_minimum,
        unranked_levels=unranked_levels,
        leadership_pool_rate=pool_rate,
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
        "ranks": [_rank_to_json(plan.ranks, rank, currency) for rank in plan.ranks],
    }
    # Absent when unset, so that older versions stay as stored.
    if plan.unranked_levels is not None:
        canonical["unranked_levels"] = plan.unranked_levels
    if plan.leadership_pool_rate is not None:
        canonical["leadership_pool"] = {"rate": format_rate(plan.leadership_pool_rate)}
    if plan.payout_minimum is not None:
        canonical["payout"] = {"minimum": format_money(plan.payout_minimum, currency)}
    return canonical


def _rank_to_json(ranks: tuple[Rank, ...], rank: Rank, currency: str) -> dict[str, object]:
    """A rank's canonical form: the fields it sets, in the order the plan documents them."""
    found: dict[str, object] = {"name": rank.name}

    def money(field: str, value: Decimal | None) -> None:
        if value is not None:
            found[field] = format_money(value, currency)

    money("min_personal_volume", rank.min_personal_volume)
    money("min_organization_volume", rank.min_organization_volume)
    if rank.max_leg_share is not None:
        found["max_leg_share"] = format_rate(rank.max_leg_share)
    if rank.min_legs is not None:
        legs: dict[str, object] = {"count": rank.min_legs.count}
        if rank.min_legs.rank is not None:
            legs["rank"] = ranks[rank.min_legs.rank].name
        if rank.min_legs.volume is not None:
            legs["volume"] = format_money(rank.min_legs.volume, currency)
        found["min_legs"] = legs
    if rank.min_active_recruits is not None:
        found["min_active_recruits"] = rank.min_active_recruits
    if rank.unlocked_levels is not None:
        found["unlocked_levels"] = rank.unlocked_levels
    if rank.differential_rate is not None:
        found["differential_rate"] = format_rate(rank.differential_rate)
    if rank.matching_rates:
        found["matching_rates"] = [format_rate(rate) for rate in rank.matching_rates]
    if rank.pool_shares is not None:
        found["pool_shares"] = rank.pool_shares
    money("advancement_bonus", rank.advancement_bonus)
    return found
