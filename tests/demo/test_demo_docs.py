"""The commands the quickstart, the console page and the README tell a person to type exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tac.cli import build_parser

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/quickstart.md", "docs/console.md"]
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _commands(page: str) -> list[str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    lines = [line for block in CONSOLE_BLOCK.findall(text) for line in block.splitlines()]
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


@pytest.mark.parametrize("page", PAGES)
def test_commands_in_the_page_exist(page: str) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in _commands(page):
        words = [w for w in shlex.split(command.replace(";", " ; ")) if "=" not in w[:20]]
        if "make" in words:
            target = words[words.index("make") + 1]
            assert re.search(rf"^{target}:", makefile, re.MULTILINE), command
        if "opentac" in words:
            arguments = words[words.index("opentac") + 1 :]
            # The command named is registered in full; a wrong option exits (fails the test).
            build_parser(arguments[:1]).parse_args(arguments)


def test_the_readme_shows_the_console() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    image = re.search(r"!\[[^\]]*console[^\]]*\]\((docs/img/[\w.-]+\.png)\)", readme)
    assert image, "the README shows no console screenshot"
    png = (ROOT / image.group(1)).read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) < 300_000
