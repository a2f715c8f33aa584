"""`service/domain/` is pure: it imports the standard library and itself, nothing else."""

import sys
from pathlib import Path

import service.domain
from tests.imports import imported_modules

DOMAIN = Path(service.domain.__file__).parent


def foreign(module: str) -> bool:
    top = module.partition(".")[0]
    inside = module == "service.domain" or module.startswith("service.domain.")
    return not inside and top not in sys.stdlib_module_names


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert len(files) >= 7  # __init__, calculator, currencies, labels, money, periods, plan
    outside = {
        str(path.relative_to(DOMAIN)): sorted(
            filter(foreign, imported_modules(path.read_text(), package="service.domain"))
        )
        for path in files
    }
    assert {name: modules for name, modules in outside.items() if modules} == {}


def test_the_check_sees_every_kind_of_import() -> None:
    source = """
import babel.numbers
from sqlalchemy import text
import decimal, re
from . import money
from service.domain.plan import Plan
from service.db import sales
def late():
    import fastapi
"""
    assert sorted(filter(foreign, imported_modules(source, package="service.domain"))) == [
        "babel.numbers",
        "fastapi",
        "service.db",
        "sqlalchemy",
    ]
