from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.money import (
    MoneyError,
    floor_money,
    format_money,
    format_rate,
    minor_unit,
    parse_money,
    parse_rate,
    round_money,
)


@pytest.mark.parametrize(("currency", "digits"), [("USD", 2), ("JPY", 0), ("KWD", 3)])
def test_minor_unit_follows_iso_4217(currency: str, digits: int) -> None:
    assert minor_unit(currency) == digits


@pytest.mark.parametrize("currency", ["ZZZ", "usd", "", "US", "USDD"])
def test_unknown_currency_is_refused(currency: str) -> None:
    with pytest.raises(MoneyError) as caught:
        minor_unit(currency)
    assert caught.value.code == "unknown_currency"


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("19.99", "USD", "19.99"),
        ("20", "USD", "20.00"),
        ("0.5", "USD", "0.50"),
        ("0", "USD", "0.00"),
        ("1500", "JPY", "1500"),
        ("1500.00", "JPY", "1500"),
        ("19.990", "USD", "19.99"),
        ("1.234", "KWD", "1.234"),
        ("999999999999999.99", "USD", "999999999999999.99"),
    ],
)
def test_parse_money_quantizes_to_the_minor_unit(text: str, currency: str, expected: str) -> None:
    amount = parse_money(text, currency)
    assert format_money(amount, currency) == expected
    assert amount.as_tuple().exponent == -minor_unit(currency)


@pytest.mark.parametrize(
    "value",
    [19.99, 20, 0, True, None, Decimal("1.00"), ["1"], {"amount": "1"}],
)
def test_parse_money_accepts_only_strings(value: object) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_money(value, "USD")
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    "text",
    [
        "-1.00",
        "-0",
        "+1.00",
        "1e3",
        "1E3",
        "NaN",
        "Infinity",
        "inf",
        " 1.00",
        "1.00 ",
        "1,00",
        "1_000",
        ".5",
        "5.",
        "",
        "0x10",
        "١٢",
        "1000000000000000",
        "1" * 100,
    ],
)
def test_parse_money_rejects_anything_but_plain_decimals(text: str) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_money(text, "USD")
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("text", "currency"),
    [("19.999", "USD"), ("0.001", "USD"), ("1.5", "JPY"), ("100.01", "JPY"), ("1.2345", "KWD")],
)
def test_parse_money_rejects_more_decimals_than_the_currency_has(text: str, currency: str) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_money(text, currency)
    assert caught.value.code == "too_many_decimals"


def test_parse_money_can_refuse_zero() -> None:
    with pytest.raises(MoneyError) as caught:
        parse_money("0.00", "USD", allow_zero=False)
    assert caught.value.code == "invalid_amount"
    assert parse_money("0.01", "USD", allow_zero=False) == Decimal("0.01")


def test_parse_money_checks_the_currency() -> None:
    with pytest.raises(MoneyError) as caught:
        parse_money("1.00", "XYZ")
    assert caught.value.code == "unknown_currency"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.05", "0.05"),
        ("0.10", "0.10"),
        ("0.1", "0.10"),
        ("0.035", "0.035"),
        ("0", "0.00"),
        ("0.000000", "0.00"),
        ("1", "1.00"),
        ("1.0", "1.00"),
    ],
)
def test_parse_rate_and_format_rate(text: str, expected: str) -> None:
    assert format_rate(parse_rate(text)) == expected


@pytest.mark.parametrize(
    "value",
    ["1.000001", "2", "-0.1", "0.1234567", "1e-2", "", " 0.1", 0.1, 1, 0, None, True],
)
def test_parse_rate_rejects_values_outside_zero_to_one_or_badly_written(value: object) -> None:
    with pytest.raises(MoneyError) as caught:
        parse_rate(value)
    assert caught.value.code == "invalid_rate"


def test_parse_rate_accepts_six_decimals() -> None:
    assert parse_rate("0.123456") == Decimal("0.123456")
    assert parse_rate("0.1234560") == Decimal("0.123456")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.125", "USD", "0.12"),
        ("0.135", "USD", "0.14"),
        ("0.145", "USD", "0.14"),
        ("-0.125", "USD", "-0.12"),
        ("2.5", "JPY", "2"),
        ("3.5", "JPY", "4"),
        ("0.0005", "KWD", "0.000"),
        ("0.0015", "KWD", "0.002"),
    ],
)
def test_round_money_is_half_even(amount: str, currency: str, expected: str) -> None:
    assert format_money(round_money(Decimal(amount), currency), currency) == expected


def test_floor_money_never_rounds_up() -> None:
    assert floor_money(Decimal("0.129"), "USD") == Decimal("0.12")
    assert floor_money(Decimal("99.9"), "JPY") == Decimal("99")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("10", "USD", "10.00"),
        ("-3", "USD", "-3.00"),
        ("1500", "JPY", "1500"),
        ("1.5E+3", "JPY", "1500"),
        ("-0.00", "USD", "0.00"),
        ("-0", "JPY", "0"),
        ("0E-10", "KWD", "0.000"),
        ("1E+14", "USD", "100000000000000.00"),
        ("12.3400", "USD", "12.34"),
    ],
)
def test_format_money_prints_exactly_the_currency_digits(
    amount: str, currency: str, expected: str
) -> None:
    assert format_money(Decimal(amount), currency) == expected


@pytest.mark.parametrize("amount", ["0.001", "NaN", "Infinity"])
def test_format_money_never_rounds_silently(amount: str) -> None:
    with pytest.raises(MoneyError):
        format_money(Decimal(amount), "USD")


@pytest.mark.parametrize(
    ("rate", "expected"), [("1E-6", "0.000001"), ("-0", "0.00"), ("5E-2", "0.05")]
)
def test_format_rate_never_uses_exponents(rate: str, expected: str) -> None:
    assert format_rate(Decimal(rate)) == expected


CURRENCIES = st.sampled_from(["USD", "JPY", "KWD"])


@given(
    currency=CURRENCIES,
    minor_units=st.integers(min_value=0, max_value=10**15 - 1),
)
def test_money_round_trips_through_its_json_form(currency: str, minor_units: int) -> None:
    amount = Decimal(minor_units).scaleb(-minor_unit(currency))
    text = format_money(amount, currency)
    assert "E" not in text
    assert parse_money(text, currency) == amount
    assert format_money(parse_money(text, currency), currency) == text


@given(micro=st.integers(min_value=0, max_value=1_000_000))
def test_rates_round_trip_through_their_json_form(micro: int) -> None:
    rate = Decimal(micro).scaleb(-6)
    text = format_rate(rate)
    assert "E" not in text
    assert parse_rate(text) == rate
    assert format_rate(parse_rate(text)) == text


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_never_money(value: float) -> None:
    with pytest.raises(MoneyError):
        parse_money(value, "USD")
