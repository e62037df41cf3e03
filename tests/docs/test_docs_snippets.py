"""Every ```python block in the documents listed here runs, in order, in one namespace per page.

Pages whose snippets need a running sandbox or server have their own tests next to the code
they document; this runner covers the pages that need nothing but the package.
"""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/configuration.md"]
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
