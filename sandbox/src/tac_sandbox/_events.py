"""An in-process event bus: products tell each other what happened without importing each other.

Topics used between products (payloads are plain JSON-like dicts):

- ``conversation.created`` / ``conversation.updated``: ``{"conversation": {...}}``
  (``updated`` adds ``"previous_status"``)
- ``participant.added`` / ``participant.updated``: ``{"participant": {...}}``
- ``communication.created`` / ``communication.updated``:
  ``{"communication": {...}, "conversation": {...}}``
- ``conversation.status_changed``: ``{"conversation", "previous_status", "status",
  "participants": [...], "communications": [...]}`` (Conversation Intelligence reads this)
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("tac_sandbox.events")

Handler = Callable[[dict[str, Any]], Awaitable[None] | None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Run every handler of ``topic`` in order; a failing handler is logged, not raised."""
        for handler in list(self._handlers.get(topic, ())):
            try:
                result = handler(payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("sandbox event handler for %s failed", topic)
