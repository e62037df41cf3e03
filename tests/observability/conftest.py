"""Observability tests: every test leaves metrics and tracing off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tac import observability


@pytest.fixture(autouse=True)
def _observability_off() -> Iterator[None]:
    yield
    observability.disable()
