"""Streaming a framework's output to a channel: tokens to voice, one message to messaging.

A connector's run yields text chunks (``str``) and :class:`ToolStarted` / :class:`ToolFinished`
markers. :func:`speak` turns that into the token stream a voice call plays, saying a short
filler line when a tool keeps the caller waiting; :func:`collect` joins the text for a
messaging reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

__all__ = ["RunEvent", "ToolFinished", "ToolStarted", "collect", "speak"]


@dataclass(frozen=True)
class ToolStarted:
    """A tool call began (``name`` is the tool's)."""

    name: str = ""


@dataclass(frozen=True)
class ToolFinished:
    """A tool call returned."""

    name: str = ""


RunEvent = str | ToolStarted | ToolFinished
"""What a connector's run yields: text, or a tool marker."""


async def collect(events: AsyncIterable[RunEvent]) -> str:
    """The text of a run, joined (tool markers are skipped)."""
    parts = [event async for event in events if isinstance(event, str)]
    return "".join(parts)


class _End:
    pass


_END = _End()


async def speak(
    events: AsyncIterable[RunEvent],
    *,
    filler: str | None = None,
    filler_after_seconds: float = 1.0,
) -> AsyncIterator[str]:
    """The run's text as it comes, for a voice reply.

    The run goes on in one task of its own (so a framework's context stays put) and its text is
    yielded as it arrives. With ``filler``: when a tool is running and no text has come for
    ``filler_after_seconds``, the filler line is spoken, once per reply. Closing the stream
    (the caller interrupted, or hung up) cancels the run.
    """
    queue: asyncio.Queue[RunEvent | _End | BaseException] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in events:
                queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            queue.put_nowait(exc)
            return
        queue.put_nowait(_END)

    task = asyncio.get_running_loop().create_task(pump())
    tools_running = 0
    filler_said = False
    try:
        while True:
            if tools_running > 0 and filler and not filler_said:
                try:
                    item = await asyncio.wait_for(queue.get(), filler_after_seconds)
                except asyncio.TimeoutError:
                    filler_said = True
                    yield filler
                    continue
            else:
                item = await queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, ToolStarted):
                tools_running += 1
            elif isinstance(item, ToolFinished):
                tools_running = max(0, tools_running - 1)
            elif item:
                yield item
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
