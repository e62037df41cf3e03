"""Every ```python block of docs/observability.md runs, in order, in one namespace; ``tac`` (the
reader's TAC instance) is provided, as the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tac import TAC, TACConfig, observability

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


async def test_observability_page_snippets_run() -> None:
    blocks = FENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 7
    tac = TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="token",
            api_key="SK" + "0" * 32,
            api_secret="secret",
            phone_number="+15005550006",
        )
    )
    namespace: dict[str, object] = {"__name__": "docs:observability", "tac": tac}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"observability.md#snippet{number}", "exec"), namespace)
    assert observability.metrics_enabled()
    assert observability.tracing_enabled()
    assert tac.has_callback("delivery_status")
    await namespace["instrumented"].aclose()  # type: ignore[attr-defined]
    await tac.aclose()
