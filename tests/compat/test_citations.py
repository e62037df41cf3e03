"""Docstrings and comments cite only what a clone of the repository contains."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# Working documents of the people who built opentac, not shipped with it.
OUTSIDE = (
    "CONTRACT.md",
    "ARCHITECTURE.md",
    "anchor-api",
    "protocols §",
    "protocols.md",
    "tests/e2e",
)
# The sandbox is moving to its own distribution; its files are checked there.
SKIP = ("src/tac/sandbox/", "tests/sandbox/")


def test_no_citation_of_files_outside_the_repository() -> None:
    found = []
    for folder in ("src", "sandbox/src", "tests", "benchmarks", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix not in {".py", ".md"} or relative.startswith(SKIP):
                continue
            if relative == "tests/compat/test_citations.py":
                continue
            text = path.read_text(encoding="utf-8")
            found += [f"{relative}: {name}" for name in OUTSIDE if name in text]
    assert found == []
