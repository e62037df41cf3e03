"""Tracked background tasks: kept referenced, errors reported, drained at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from tac.core.logging import get_logger

logger = get_logger("tasks")


class TaskGroup:
    """Runs fire-and-forget work (a webhook's turn) without losing track of it.

    Every task is referenced until it finishes (so it cannot be garbage-collected mid-turn),
    an exception escaping it is logged, and :meth:`drain` waits for all of them within a grace
    period before cancelling what is left.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        if self._closing:
            coro.close()
            raise RuntimeError("shutting down: no new work is accepted")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error(
                "background task %s failed: %s",
                task.get_name(),
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closing(self) -> bool:
        return self._closing

    async def drain(self, grace_period: float) -> int:
        """Stop accepting work, wait up to ``grace_period`` s, cancel the rest; return cancelled."""
        self._closing = True
        pending = set(self._tasks)
        if not pending:
            return 0
        _, still_running = await asyncio.wait(pending, timeout=grace_period)
        for task in still_running:
            task.cancel()
        for task in still_running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return len(still_running)
