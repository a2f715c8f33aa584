"""What the store integrations share: the platform-neutral results, the typed error, and
the careful reading of a delivery (headers, JSON, ids, money, instants).

JSON is read with `parse_float=Decimal`, so a number is the decimal it spells ("10.0" is
`Decimal("10.0")`, never the float 10.0); integers stay `int`. Every value is checked for
the type the platform documents, and anything else is a `StoreError`, never a `KeyError`
or a `TypeError`.
"""

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, NoReturn

from service.domain.currencies import MINOR_UNITS
from service.domain.money import EXACT, MAX_INTEGER_DIGITS

__all__ = [
    "CATEGORY",
    "DEFAULT_ATTRIBUTION_FIELD",
    "PLATFORMS",
    "Attribution",
    "Delivery",
    "ErrorCode",
    "IgnoredReason",
    "Integration",
    "Platform",
    "StoreError",
    "StoreRefund",
    "StoreSale",
]

Platform = Literal["shopify", "woocommerce", "stripe"]
PLATFORMS: Final[tuple[Platform, ...]] = ("shopify", "woocommerce", "stripe")

DEFAULT_ATTRIBUTION_FIELD: Final = "member_id"
"""The field of an order that names the member credited with it, unless configured."""

CATEGORY: Final = "product"
"""The plan category of every store sale."""

ErrorCode = Literal[
    "malformed_delivery",
    "unsupported_currency",
    "invalid_amount",
    "invalid_signature",
    "currency_mismatch",
    "no_attribution",
]
"""The stable codes of `StoreError`:

- `malformed_delivery`: the body is not JSON, or not the shape the platform documents (a
  missing id, a number where text belongs, an instant without its offset, ...), or a
  header the delivery needs is missing.
- `unsupported_currency`: a currency code the engine does not know.
- `invalid_amount`: an amount that is negative, has more decimals than its currency, or
  more than 15 integer digits.
- `invalid_signature`: `receive` found no valid signature.
- `currency_mismatch`: `check_currency`, a sale or refund in another currency than the
  program's.
- `no_attribution`: `check_attribution`, a sale that names no member and used no code.
"""

IgnoredReason = Literal["topic_not_handled", "not_paid", "zero_amount", "no_invoice"]
"""Why a valid delivery applies nothing (it is answered OK all the same):

- `topic_not_handled`: a topic or event type the integration does not map.
- `not_paid`: a WooCommerce order in a status other than processing or completed, with
  no refunds.
- `zero_amount`: an order of zero, a refund of zero, or a charge event that refunds
  nothing new.
- `no_invoice`: a Stripe charge that belongs to neither an invoice nor a PaymentIntent.
"""

_OBJECT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_DECIMAL_TEXT = 64
_MAX_DECIMALS = 20
_CURRENCY_TEXT = re.compile(r"[A-Za-z]{3}")
_INSTANT_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)

JsonObject = Mapping[str, object]


class StoreError(ValueError):
    """A delivery the integration cannot map, with a stable machine-readable code."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code: ErrorCode = code
        self.detail = detail


@dataclass(frozen=True)
class Integration:
    """One store connected to a program: its platform, the secret its deliveries are
    signed with, and the name of the order field that carries the credited member's id."""

    platform: Platform
    secret: str = field(repr=False)
    attribution_field: str = DEFAULT_ATTRIBUTION_FIELD

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"unknown store platform {self.platform!r}")
        if not isinstance(self.attribution_field, str) or not self.attribution_field.strip():
            raise ValueError("the attribution field must be a non-empty name")


@dataclass(frozen=True)
class Attribution:
    """Who an order credits: the member id it carries in the attribution field, and the
    codes (discount codes, coupons) it used, which the caller resolves to members'
    referral codes, case-insensitively."""

    member_id: str | None = None
    codes: tuple[str, ...] = ()

    @property
    def missing(self) -> bool:
        """Neither a member id nor a code: the sale is refused with `no_attribution`."""
        return self.member_id is None and not self.codes


@dataclass(frozen=True)
class StoreSale:
    """A paid order, in the shape of the engine's sale (category `product`)."""

    sale_id: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    subscription_id: str | None
    attribution: Attribution
    category: str = CATEGORY
    payment_intents: tuple[str, ...] = ()
    """Stripe: the PaymentIntents that paid the invoice, as far as the payload names them
    (a refund in the current API names only its PaymentIntent)."""


@dataclass(frozen=True)
class StoreRefund:
    """A refund of a store sale.

    Exactly one of `sale_id` and `payment_intent` is set: `payment_intent` (Stripe's
    current API only) means "the sale of the invoice paid by this PaymentIntent", for the
    caller to resolve. `currency` is None when the payload does not state it (the refund is
    in its sale's currency).
    """

    refund_id: str
    sale_id: str | None
    payment_intent: str | None
    amount: Decimal
    currency: str | None
    occurred_at: datetime


@dataclass(frozen=True)
class Delivery:
    """What one webhook delivery means.

    `delivery_key` identifies the delivery for exactly-once processing (None for a ping).
    A ping, or a delivery with an `ignored_reason`, applies nothing and is answered OK.
    """

    platform: Platform
    delivery_key: str | None
    topic: str
    sales: tuple[StoreSale, ...] = ()
    refunds: tuple[StoreRefund, ...] = ()
    ping: bool = False
    ignored_reason: IgnoredReason | None = None
    references: tuple[tuple[str, str], ...] = ()
    """Stripe: (PaymentIntent id, sale id) pairs the delivery tells, by which a refund that
    names only its PaymentIntent finds its sale."""


def malformed(detail: str) -> NoReturn:
    """Refuse the delivery as `malformed_delivery`."""
    raise StoreError("malformed_delivery", detail)


# Headers and signatures


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers keyed by their lower-case names (HTTP names are case-insensitive)."""
    return {str(name).lower(): value for name, value in headers.items()}


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of a header of `lower_headers`, without surrounding spaces; None when it
    is absent, blank or not text."""
    value = headers.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def base64_hmac_matches(secret: str, body: bytes, given: str | None) -> bool:
    """Whether `given` is the base64 HMAC-SHA256 of the raw body under the secret, compared
    in constant time. An empty secret never matches."""
    if not secret or given is None or not given.isascii():
        return False
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest), given.encode("ascii"))


# JSON


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


def parse_json(body: bytes) -> object:
    """The JSON value of a UTF-8 body, numbers with a fraction or exponent as `Decimal`."""
    try:
        return json.loads(
            body.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError, ArithmeticError) as error:
        # UnicodeDecodeError is a ValueError; a number past Decimal's exponent range an
        # ArithmeticError (decimal.InvalidOperation)
        raise StoreError("malformed_delivery", "the body is not JSON") from error


def json_object(value: object, where: str) -> JsonObject:
    """A JSON object; `where` names it in the error."""
    if not isinstance(value, dict):
        malformed(f"{where} must be a JSON object")
    return value


def optional_object(value: object, where: str) -> JsonObject:
    """An object that may be null or absent (read as empty)."""
    return {} if value is None else json_object(value, where)


def json_list(value: object, where: str) -> list[object]:
    """A list that may be null or absent (read as empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        malformed(f"{where} must be a JSON array")
    return value


def text(value: object, where: str) -> str:
    """Non-empty text, without surrounding spaces."""
    if not isinstance(value, str) or not value.strip():
        malformed(f"{where} must be non-empty text")
    return value.strip()


def identifier(value: object, where: str) -> str:
    """A platform id: a non-negative integer (Shopify, WooCommerce) or text (Stripe)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _OBJECT_ID.fullmatch(value):
        return value
    malformed(f"{where} must be an id")


def reference(value: object, where: str) -> str | None:
    """A Stripe reference to another object: its id, or the object itself when expanded."""
    if value is None:
        return None
    if isinstance(value, dict):
        return identifier(value.get("id"), f"{where}.id")
    return identifier(value, where)


def object_id(value: str, what: str) -> str:
    """An id the engine accepts (1-64 characters of A-Za-z0-9._:-)."""
    if _OBJECT_ID.fullmatch(value) is None:
        malformed(f"{what} {value!r} is not a valid id (1-64 characters of A-Za-z0-9._:-)")
    return value


# Money


def decimal(value: object, where: str) -> Decimal:
    """A number as the decimal it spells: a JSON number or decimal text ("21.99"), of at
    most 64 digits and 20 decimal places, so that sums of a few are exact in `EXACT`."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif (
        isinstance(value, str)
        and len(value) <= _MAX_DECIMAL_TEXT
        and _DECIMAL_TEXT.fullmatch(value)
    ):
        number = Decimal(value)
    else:
        malformed(f"{where} must be a decimal number")
    if len(number.as_tuple().digits) > _MAX_DECIMAL_TEXT:
        raise StoreError("invalid_amount", f"{where} has more than {_MAX_DECIMAL_TEXT} digits")
    exponent = number.normalize(EXACT).as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_MAX_DECIMALS:
        raise StoreError("invalid_amount", f"{where} has more than {_MAX_DECIMALS} decimals")
    return number


def currency(value: object, where: str) -> str:
    """An ISO 4217 code the engine knows, in upper case (Stripe writes "usd")."""
    if not isinstance(value, str) or _CURRENCY_TEXT.fullmatch(value) is None:
        malformed(f"{where} must be a three-letter currency code")
    code = value.upper()
    if code not in MINOR_UNITS:
        raise StoreError("unsupported_currency", f"{where}: unknown currency {value!r}")
    return code


def bounded(amount: Decimal, where: str) -> Decimal:
    """A non-negative amount of at most 15 integer digits (zero without a sign)."""
    if amount.is_zero():
        return amount.copy_abs()
    if amount < 0:
        raise StoreError("invalid_amount", f"{where} must not be negative")
    if amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise StoreError(
            "invalid_amount", f"{where} has more than {MAX_INTEGER_DIGITS} integer digits"
        )
    return amount


def exact_amount(amount: Decimal, code: str, where: str) -> Decimal:
    """The amount in major units, exact in the currency's minor unit and quantized to it
    ("10.0" USD is 10.00); more decimals than the currency has are refused, never rounded."""
    amount = bounded(amount, where)
    quantum = Decimal(1).scaleb(-MINOR_UNITS[code])
    try:
        exact = amount.quantize(quantum, context=EXACT)
    except InvalidOperation:
        exact = None
    if exact is None or exact != amount:
        raise StoreError("invalid_amount", f"{where} {amount} has more decimals than {code} allows")
    return exact.copy_abs() if exact.is_zero() else exact


# Instants


def iso_instant(value: object, where: str, *, naive_is_utc: bool) -> datetime:
    """An ISO 8601 date-time as an aware UTC datetime. Without an offset it is refused,
    unless `naive_is_utc` (WooCommerce's `*_gmt` fields are UTC written without one)."""
    if not isinstance(value, str):
        malformed(f"{where} must be an ISO 8601 date-time")
    match = _INSTANT_TEXT.fullmatch(value)
    if match is None or (match["offset"] is None and not naive_is_utc):
        malformed(f"{where} must be an ISO 8601 date-time with its offset, not {value!r}")
    try:
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            return instant.replace(tzinfo=UTC)
        return instant.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise StoreError("malformed_delivery", f"{where}: {value!r} is not a date") from error


def unix_instant(value: object, where: str) -> datetime:
    """A Unix timestamp (whole seconds) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        malformed(f"{where} must be a Unix timestamp")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError) as error:
        raise StoreError("malformed_delivery", f"{where}: {value} is out of range") from error


# Attribution


def member_value(value: object) -> str | None:
    """A member id as an attribute value: text (spaces trimmed) or an integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def distinct_codes(values: Iterable[object]) -> tuple[str, ...]:
    """The codes that are non-empty text, trimmed, each once regardless of case, in order."""
    seen: set[str] = set()
    codes: list[str] = []
    for value in values:
        if isinstance(value, str) and value.strip():
            code = value.strip()
            if code.casefold() not in seen:
                seen.add(code.casefold())
                codes.append(code)
    return tuple(codes)
