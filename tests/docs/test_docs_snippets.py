"""Every ```python block in the documents listed here runs, in order, in one namespace per page.

Snippets that need Twilio start an in-process sandbox themselves (``Sandbox.start()``); pages
whose snippets need a server in another process have their own tests next to the code.
"""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/configuration.md", "docs/memory.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(page: str) -> list[str]:
    return FENCE.findall((ROOT / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page: str) -> None:
    blocks = python_blocks(page)
    assert blocks, f"{page} has no python snippets"
    namespace: dict[str, object] = {"__name__": f"docs:{page}"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{page}#snippet{number}", "exec")
        exec(code, namespace)
