"""The documentation stands alone: every relative link of README.md and docs/*.md leads to a
file (and heading) of the repository, and nothing in the repository points outside it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")

# Built from parts, so that this file does not hold the strings it looks for.
_OUTSIDE = ("../" + "shared", "SPEC" + ".md")
_NOT_THE_REPOSITORY = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "dist",
    ".data",
}


def _prose(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    found = set()
    for line in _prose(document.read_text()):
        match = _HEADING.match(line)
        if match:
            found.add(slug(match.group(1)))
    return found


def links(document: Path) -> list[str]:
    return [m.group(1) for line in _prose(document.read_text()) for m in _LINK.finditer(line)]


def test_slugs_are_githubs() -> None:
    assert slug("Webhook intake: `POST /v1/events`") == "webhook-intake-post-v1events"
    assert slug("401, 403") == "401-403"
    assert slug("Keys and scopes") == "keys-and-scopes"


def test_the_readme_leads_into_docs() -> None:
    readme_links = links(ROOT / "README.md")
    for page in ("index", "concepts", "money", "api", "errors", "operations"):
        assert f"docs/{page}.md" in readme_links, page


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_of_the_repository(document: Path) -> None:
    broken = []
    checked = 0
    for target in links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        checked += 1
        if not (linked.is_relative_to(ROOT) and linked.exists()):
            broken.append(target)
            continue
        if anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []
    assert checked > 0


def _repository_files() -> list[Path]:
    found = []
    for directory, subdirectories, names in os.walk(ROOT):
        here = Path(directory)
        subdirectories[:] = [
            name
            for name in subdirectories
            if name not in _NOT_THE_REPOSITORY
            and not name.endswith(".egg-info")
            and (here / name).relative_to(ROOT).parts != ("bench", "out")
        ]
        found += [here / name for name in names]
    return found


def test_nothing_in_the_repository_points_outside_it() -> None:
    files = _repository_files()
    assert ROOT / "README.md" in files
    assert ROOT / ".ci" / "run" in files
    mentions = [
        f"{path.relative_to(ROOT)}: {outside}"
        for path in files
        for outside in _OUTSIDE
        if outside.encode() in path.read_bytes()
    ]
    assert mentions == []
