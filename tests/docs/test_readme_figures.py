"""The README's side-by-side figure is the one docs/performance.md (``make bench``) holds."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_readme_quotes_the_side_by_side_run_of_docs_performance() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    performance = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    quoted = re.search(
        r"about (\d+) times as many\s+messages \(([\d,]+) a second against ([\d,]+)", readme
    )
    assert quoted, "the README no longer quotes the side-by-side figure"
    side_by_side = performance.partition("### Side by side with the reference SDK")[2]
    ours = re.search(r"^\| opentac \| (\d+) \|", side_by_side, re.MULTILINE)
    theirs = re.search(r"^\| reference [\d.]+ \| (\d+) \|", side_by_side, re.MULTILINE)
    assert ours, "docs/performance.md has no side-by-side row for opentac"
    assert theirs, "docs/performance.md has no side-by-side row for the reference"
    ratio, opentac, reference = (_number(value) for value in quoted.groups())
    assert (opentac, reference) == (int(ours[1]), int(theirs[1]))
    assert abs(ratio - opentac / reference) <= 0.1 * ratio  # "about N times"
