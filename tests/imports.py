"""What a module imports, read from its source: for the tests that keep layers apart."""

import ast


def imported_modules(source: str, *, package: str) -> set[str]:
    """The absolute names of the modules a module's source imports, anywhere in it (a
    relative import counts as an import of `package`, the module's own package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else node.module or "")
    return found
