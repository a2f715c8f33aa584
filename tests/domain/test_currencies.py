"""The engine's table of currencies against CLDR as Babel ships it (the test extra pins the
Babel the table was taken from: bump the pin to review a newer CLDR on purpose)."""

from babel.numbers import get_currency_precision, list_currencies

from service.domain.currencies import MINOR_UNITS
from service.domain.money import minor_unit


def test_the_table_knows_exactly_the_currencies_babel_knows() -> None:
    assert sorted(MINOR_UNITS) == sorted(list_currencies())
    assert len(MINOR_UNITS) == 307


def test_every_currency_has_the_digits_babel_gives_it() -> None:
    differing = {
        code: (digits, get_currency_precision(code))
        for code, digits in MINOR_UNITS.items()
        if digits != get_currency_precision(code)
    }
    assert differing == {}


def test_minor_unit_answers_the_table() -> None:
    assert {code: minor_unit(code) for code in MINOR_UNITS} == dict(MINOR_UNITS)
    # Where ISO 4217 gives 2 digits that CLDR says are unused, amounts are whole (as they
    # were under Babel 2.19); CLF is the one with most digits.
    assert [minor_unit(code) for code in ("HUF", "IDR", "COP", "CLF")] == [0, 0, 0, 4]
