"""Calling user callbacks: sync or async, sync ones off the event loop."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any


def is_async_callable(callback: Callable[..., Any]) -> bool:
    target: Any = callback
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004 - callable objects
    return inspect.iscoroutinefunction(call)


async def invoke(callback: Callable[..., Any], *args: Any) -> Any:
    """Await an async callback; run a sync one in a worker thread (it may block)."""
    if is_async_callable(callback):
        result = callback(*args)
    else:
        result = await asyncio.to_thread(callback, *args)
    if inspect.isawaitable(result):
        result = await result
    return result
