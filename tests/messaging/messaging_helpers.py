"""Helpers shared by the messaging tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait until ``check()`` is truthy (awaiting it if needed); fail after ``timeout``.

    Webhooks are acknowledged before the agent's turn runs, so a test waits for the turn's
    effects rather than for the delivery.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
