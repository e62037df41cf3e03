"""One of each helper: the SDK's modules use the shared ones instead of writing their own."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src" / "tac"


def _sources() -> dict[str, str]:
    return {
        path.relative_to(SRC).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(SRC.rglob("*.py"))
    }


def test_every_module_logs_through_the_redacting_logger() -> None:
    plain = [name for name, text in _sources().items() if "logging.getLogger(" in text]
    assert plain == ["core/logging.py"]


def test_pydantic_errors_become_messages_in_one_place() -> None:
    pattern = re.compile(r"\.errors\([^)]*\)\[0\]")
    copies = [name for name, text in _sources().items() if pattern.search(text)]
    assert copies == ["models/_base.py"]
