"""`service/domain/` is pure: it imports the standard library and itself, nothing else."""

import ast
import sys
from pathlib import Path

import service.domain

DOMAIN = Path(service.domain.__file__).parent


def imported_modules(source: str) -> set[str]:
    """The absolute names of the modules a module's source imports, anywhere in it (relative
    imports of the package itself count as `service.domain`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("service.domain" if node.level else node.module or "")
    return found


def foreign(module: str) -> bool:
    top = module.partition(".")[0]
    inside = module == "service.domain" or module.startswith("service.domain.")
    return not inside and top not in sys.stdlib_module_names


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    files = sorted(DOMAIN.rglob("*.py"))
    assert len(files) >= 7  # __init__, calculator, currencies, labels, money, periods, plan
    outside = {
        str(path.relative_to(DOMAIN)): sorted(filter(foreign, imported_modules(path.read_text())))
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
    assert sorted(filter(foreign, imported_modules(source))) == [
        "babel.numbers",
        "fastapi",
        "service.db",
        "sqlalchemy",
    ]
