"""What the sandbox's phones (ConversationRelay and Media Streams) share: their calls by
CallSid, the tasks they run in the background, and the app ending a call through the Calls
API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, Generic, Protocol, TypeVar

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import not_found


class _Call(Protocol):
    @property
    def connected(self) -> bool: ...

    async def hang_up(self) -> None: ...

    async def end_by_api(self) -> None: ...

    async def aclose(self) -> None: ...


C = TypeVar("C", bound=_Call)


class Phone(Generic[C]):
    """The calls a phone placed or answered (:attr:`calls`, by CallSid) and its background
    tasks."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.calls: dict[str, C] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def get(self, call_sid: str) -> C:
        """The call ``call_sid`` (a Twilio 404 when there is none)."""
        caller = self.calls.get(call_sid)
        if caller is None:
            raise not_found("Call", call_sid)
        return caller

    def _updated(self, payload: dict[str, Any]) -> C | None:
        """For a ``call.updated`` event: end the call when the app completed or canceled it;
        the call, when it is one of these, connected, and not ended by this update."""
        call = payload.get("call") or {}
        caller = self.calls.get(str(call.get("sid")))
        if caller is None or not caller.connected:
            return None
        if payload.get("status") in ("completed", "canceled"):
            self._spawn(caller.end_by_api())
            return None
        return caller

    async def _hang_up_all(self) -> None:
        for caller in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await caller.hang_up()
        self.calls.clear()

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _close_calls(self) -> None:
        for caller in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await caller.aclose()
