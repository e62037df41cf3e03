"""Which instance holds a live call, and a way to ask that instance to act on it.

A ConversationRelay call lives on the one instance its WebSocket reached. Another instance
that receives something for that call (a handoff request, ``hang_up``, ``CLOSED``) asks
:class:`LiveCalls` whether the call is live somewhere and, if so, sends the command to its
instance (Redis pub/sub), which carries it out over the call's WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from tac.core.logging import get_logger

__all__ = ["InMemoryLiveCalls", "LiveCalls"]

logger = get_logger("state.live_calls")

Handler = Callable[[dict[str, Any]], Awaitable[None]]


@runtime_checkable
class LiveCalls(Protocol):
    """Live calls across instances (the in-process version knows only its own)."""

    async def start(self, handler: Handler) -> None:
        """Receive the commands other instances send to this one (``handler(command)``)."""
        ...

    async def register(self, *ids: str, ttl_seconds: float) -> None:
        """This instance holds the call known by ``ids`` (conversation id, CallSid)."""
        ...

    async def unregister(self, *ids: str) -> None: ...

    async def elsewhere(self, call_id: str) -> bool:
        """Whether a live instance other than this one holds the call."""
        ...

    async def send(self, call_id: str, command: dict[str, Any]) -> bool:
        """Send ``command`` to the instance holding the call; ``False`` if none got it."""
        ...

    async def aclose(self) -> None: ...


class InMemoryLiveCalls:
    """One process: every live call is local, so there is never anyone else to ask."""

    async def start(self, handler: Handler) -> None:
        return None

    async def register(self, *ids: str, ttl_seconds: float) -> None:
        return None

    async def unregister(self, *ids: str) -> None:
        return None

    async def elsewhere(self, call_id: str) -> bool:
        return False

    async def send(self, call_id: str, command: dict[str, Any]) -> bool:
        return False

    async def aclose(self) -> None:
        return None


HEARTBEAT_SECONDS = 5.0


class RedisLiveCalls:
    """Live calls in Redis: ``live:{id}`` → owner, ``instance:{owner}`` heartbeat, and one
    pub/sub channel per instance (``cmd:{owner}``) for the commands others send it."""

    def __init__(self, client: Any, prefix: str, owner: str) -> None:
        self._client = client
        self._prefix = prefix
        self.owner = owner
        self._task: asyncio.Task[None] | None = None

    def _live(self, call_id: str) -> str:
        return f"{self._prefix}live:{call_id}"

    def _instance(self, owner: str) -> str:
        return f"{self._prefix}instance:{owner}"

    async def start(self, handler: Handler) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._serve(handler), name="tac-live-calls"
            )

    async def _serve(self, handler: Handler) -> None:
        channel = f"{self._prefix}cmd:{self.owner}"
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                beat = 0.0
                loop = asyncio.get_running_loop()
                while True:
                    if loop.time() >= beat:
                        await self._client.set(
                            self._instance(self.owner), "1", px=int(3 * HEARTBEAT_SECONDS * 1000)
                        )
                        beat = loop.time() + HEARTBEAT_SECONDS
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        command = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    try:
                        await handler(command)
                    except Exception as exc:
                        logger.warning("a call command from another instance failed: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: subscribe again shortly
                logger.warning("live-call channel lost: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def register(self, *ids: str, ttl_seconds: float) -> None:
        px = max(1, int(ttl_seconds * 1000))
        async with self._client.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.set(self._live(call_id), self.owner, px=px)
            pipe.set(self._instance(self.owner), "1", px=int(3 * HEARTBEAT_SECONDS * 1000))
            await pipe.execute()

    async def unregister(self, *ids: str) -> None:
        if ids:
            await self._client.delete(*(self._live(i) for i in ids))

    async def _owner(self, call_id: str) -> str | None:
        owner = await self._client.get(self._live(call_id))
        if owner is None:
            return None
        owner = owner.decode() if isinstance(owner, bytes) else str(owner)
        if owner == self.owner:
            return None
        if not await self._client.exists(self._instance(owner)):
            return None  # its instance stopped: the call went with it
        return owner

    async def elsewhere(self, call_id: str) -> bool:
        return await self._owner(call_id) is not None

    async def send(self, call_id: str, command: dict[str, Any]) -> bool:
        owner = await self._owner(call_id)
        if owner is None:
            return False
        received = await self._client.publish(
            f"{self._prefix}cmd:{owner}", json.dumps({**command, "call_id": call_id})
        )
        return bool(received)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._client.delete(self._instance(self.owner))
