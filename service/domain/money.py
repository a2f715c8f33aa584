"""Money and rates as `Decimal`, and the one rounding rule of the engine.

Amounts travel as strings in major units ("19.99") and are held as `Decimal` quantized to
the currency's minor unit. Every commission amount is rounded by `round_money` and by
nothing else; `floor_money` exists only to turn a cap into an amount that is never exceeded.
"""

import re
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

from service.domain.currencies import MINOR_UNITS

__all__ = [
    "EXACT",
    "MAX_INTEGER_DIGITS",
    "RATE_DECIMALS",
    "MoneyError",
    "floor_money",
    "format_money",
    "format_rate",
    "minor_unit",
    "parse_money",
    "parse_rate",
    "round_money",
]

MAX_INTEGER_DIGITS = 15
"""Amounts have at most 15 integer digits, so they fit a NUMERIC(20, 4) column."""

RATE_DECIMALS = 6
"""Rates given in input carry at most six decimal places ("0.123456")."""

EXACT = Context(
    prec=80,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)
"""Arithmetic context wide enough that products of bounded amounts and rates are exact.

Amounts have at most 19 significant digits and rates at most 10 decimals, so a product has
at most about 30 digits; 80 leaves room for quotients whose rounding to 80 digits can never
move a value across a half-way point of a minor unit (see `service.domain.calculator`).
"""

_MAX_TEXT_LENGTH = 64
_DECIMAL_TEXT = re.compile(r"(?P<integer>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


class MoneyError(ValueError):
    """A money or rate value that the engine refuses, with a stable machine-readable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def minor_unit(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3).

    The code must be an upper-case ISO 4217 code of `service.domain.currencies`.
    """
    digits = MINOR_UNITS.get(currency) if isinstance(currency, str) else None
    if digits is None:
        raise MoneyError("unknown_currency", f"unknown currency code {currency!r}")
    return digits


_QUANTA: dict[str, Decimal] = {}


def _quantum(currency: str) -> Decimal:
    """One minor unit of the currency (0.01 for USD); looked up once per currency."""
    quantum = _QUANTA.get(currency)
    if quantum is None:
        quantum = _QUANTA[currency] = Decimal(1).scaleb(-minor_unit(currency))
    return quantum


def _parse_decimal_text(value: object, *, code: str, what: str, example: str) -> Decimal:
    """A plain non-negative decimal string: digits, optionally a point and more digits.

    No sign, exponent, whitespace, NaN or Infinity; JSON numbers (float, int, bool) are
    refused because amounts and rates travel as strings.
    """
    if isinstance(value, bool) or value is None:
        raise MoneyError(code, f'{what} must be a decimal string such as "{example}"')
    if isinstance(value, int | float | Decimal):
        raise MoneyError(
            code, f'{what} must be a decimal string such as "{example}", not a JSON number'
        )
    if not isinstance(value, str):
        raise MoneyError(code, f'{what} must be a decimal string such as "{example}"')
    if value.startswith("-"):
        raise MoneyError(code, f"{what} must not be negative")
    if len(value) > _MAX_TEXT_LENGTH or _DECIMAL_TEXT.fullmatch(value) is None:
        raise MoneyError(code, f'{what} must be a plain decimal string such as "{example}"')
    return Decimal(value)


def _decimal_places(number: Decimal) -> int:
    """Decimal places the value needs, ignoring trailing zeros ("19.990" needs 2)."""
    if number.is_zero():
        return 0
    exponent = number.normalize(EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def parse_money(value: object, currency: str, *, allow_zero: bool = True) -> Decimal:
    """A money amount from its JSON form, exact in the currency's minor unit.

    Only a non-negative decimal string is accepted. It may not need more decimals than the
    currency has (trailing zeros are harmless: "1500.00" is a valid JPY amount), and it has
    at most 15 integer digits. With `allow_zero=False`, zero is refused too.
    """
    number = _parse_decimal_text(value, code="invalid_amount", what="amount", example="19.99")
    digits = minor_unit(currency)
    if _decimal_places(number) > digits:
        raise MoneyError(
            "too_many_decimals",
            f"amount {value} has more decimals than {currency} allows ({digits})",
        )
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        raise MoneyError(
            "invalid_amount", f"amount must have at most {MAX_INTEGER_DIGITS} integer digits"
        )
    if not allow_zero and number.is_zero():
        raise MoneyError("invalid_amount", "amount must be greater than zero")
    return number.quantize(_quantum(currency), context=EXACT)


def parse_rate(value: object) -> Decimal:
    """A rate from its JSON form: a decimal string in [0, 1] with at most six decimals."""
    number = _parse_decimal_text(value, code="invalid_rate", what="rate", example="0.05")
    if number > 1:
        raise MoneyError("invalid_rate", f"rate {value} is more than 1")
    if _decimal_places(number) > RATE_DECIMALS:
        raise MoneyError(
            "invalid_rate", f"rate {value} has more than {RATE_DECIMALS} decimal places"
        )
    return number.normalize(EXACT) if not number.is_zero() else Decimal(0)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The engine's one rounding rule: half-even to the currency's minor unit."""
    if not amount.is_finite():
        raise MoneyError("invalid_amount", f"cannot round {amount}")
    return amount.quantize(_quantum(currency), rounding=ROUND_HALF_EVEN, context=EXACT)


def floor_money(amount: Decimal, currency: str) -> Decimal:
    """A ceiling on money, rounded down to the minor unit so that it is never exceeded.

    Used only for caps (a sale's maximum payout); commission amounts use `round_money`.
    """
    if not amount.is_finite():
        raise MoneyError("invalid_amount", f"cannot round {amount}")
    return amount.quantize(_quantum(currency), rounding=ROUND_DOWN, context=EXACT)


def format_money(amount: Decimal, currency: str) -> str:
    """The JSON form of an amount: exactly the currency's digits ("10.00", "1500" for JPY).

    The amount must already be exact in the minor unit (formatting never rounds); zero is
    printed without a sign.
    """
    if not amount.is_finite():
        raise MoneyError("invalid_amount", f"cannot format {amount}")
    quantum = _quantum(currency)
    exact = amount.quantize(quantum, context=EXACT)
    if exact != amount:
        raise MoneyError(
            "invalid_amount", f"{amount} is not a whole number of {currency} minor units"
        )
    if exact.is_zero():
        exact = exact.copy_abs()
    return f"{exact:f}"


def format_rate(rate: Decimal) -> str:
    """The JSON form of a rate: at least two decimals, no trailing zeros past them
    ("0.05", "0.10", "0.035", "0.00", "1.00"), never an exponent."""
    if not rate.is_finite():
        raise MoneyError("invalid_rate", f"cannot format rate {rate}")
    text = f"{rate.normalize(EXACT):f}" if not rate.is_zero() else "0"
    integer, _, fraction = text.partition(".")
    return f"{integer}.{fraction.ljust(2, '0')}"
