"""Wake long-polls when something changes (new messages, new webhook deliveries)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Changes:
    """A change signal that any number of waiters can await with a condition and a timeout."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait_until(self, check: Callable[[], T], timeout: float) -> T:
        """Return ``check()`` once it is truthy, or its last (falsy) value after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while True:
            result = check()
            remaining = deadline - loop.time()
            if result or remaining <= 0:
                return result
            if self._event is None:
                self._event = asyncio.Event()
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                return check()
