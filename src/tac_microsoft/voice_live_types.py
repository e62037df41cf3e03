"""Configuration of :class:`~tac_microsoft.VoiceLiveConnector`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VoiceLiveConfig", "VoiceLiveError"]


class VoiceLiveError(Exception):
    """Voice Live reported an error, or the session could not be set up."""


@dataclass
class VoiceLiveConfig:
    """Azure AI Foundry Voice Live in text mode (ConversationRelay does speech both ways).

    ``endpoint`` is the resource's host (``name.services.ai.azure.com``; a ``ws://`` or
    ``wss://`` URL base is used as given). Authenticate with ``api_key`` or an Azure
    ``credential`` (sync or async ``get_token``; a sync one runs in a worker thread).
    ``tools`` takes ``TACTool``\\ s (their code runs here) and tool definitions as dicts (give
    their code in ``tool_executors``).
    """

    endpoint: str
    model: str
    api_key: str | None = None
    credential: Any = None
    api_version: str = "2025-10-01"
    instructions: str = ""
    tools: list[Any] = field(default_factory=list)
    tool_executors: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    modalities: list[str] = field(default_factory=lambda: ["text"])
    temperature: float | None = None
    max_response_output_tokens: int | str | None = None

    def __post_init__(self) -> None:
        from tac.tools.base import TACTool

        definitions: list[dict[str, Any]] = []
        for tool in self.tools:
            if isinstance(tool, TACTool):
                definitions.append(tool.to_realtime_format())
                self.tool_executors[tool.name] = tool.__call__
            elif isinstance(tool, dict) and "function" in tool and "name" not in tool:
                function = tool["function"]
                definitions.append(
                    {
                        "type": "function",
                        "name": function["name"],
                        "description": function.get("description", ""),
                        "parameters": function.get("parameters", {}),
                    }
                )
            else:
                definitions.append(dict(tool))
        self.tools = definitions

    @property
    def ws_url(self) -> str:
        """The Voice Live WebSocket URL."""
        base = self.endpoint.rstrip("/")
        if not base.startswith(("ws://", "wss://")):
            base = f"wss://{base}"
        return f"{base}/voice-live/realtime?api-version={self.api_version}&model={self.model}"
