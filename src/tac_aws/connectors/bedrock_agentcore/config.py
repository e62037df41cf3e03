"""How :class:`~tac_aws.connectors.BedrockAgentCoreConnector` reaches an AgentCore runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["RuntimeConfig", "WebSocketConfig"]


class WebSocketConfig(BaseModel):
    """A WebSocket per voice conversation (opened on its first message, closed at its end).

    ``factory(session)`` opens it (async); ``payload_fn(session, message, memory_context)``
    builds each message sent. The runtime answers ``{"type": "text", "token", "last"}``
    frames (``{"type": "error", "message"}`` on failure) and receives
    ``{"type": "interrupt", "utterance_until_interrupt"}`` when the caller interrupts.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    factory: Callable[..., Any]
    payload_fn: Callable[..., dict[str, Any]]


class RuntimeConfig(BaseModel):
    """``http(session, message, memory_context)`` returns ``invoke_agent_runtime``'s response
    (sync boto3 is run in a worker thread; an async function is awaited). ``websocket``, when
    given, serves voice."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    http: Callable[..., Any]
    websocket: WebSocketConfig | None = None
