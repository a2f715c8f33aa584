"""The migrations: what they may import, and what they do to stored data."""

import sys

from service.db.migrate import migrations_dir
from tests.imports import imported_modules

ALLOWED = {"alembic", "sqlalchemy"}
"""Besides the standard library: a migration freezes what it needs of the live code, so that
later edits of `service` can never change what an old migration does."""


def test_migrations_import_no_live_code() -> None:
    files = sorted((migrations_dir() / "versions").glob("*.py"))
    assert len(files) >= 9
    foreign = {
        path.name: sorted(
            module
            for module in imported_modules(path.read_text(), package="migrations.versions")
            if module.partition(".")[0] not in sys.stdlib_module_names | ALLOWED
        )
        for path in files
    }
    assert {name: modules for name, modules in foreign.items() if modules} == {}
