"""A scripted ADK model (a ``BaseLlm``): streams text word by word, or calls a tool."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.models import BaseLlm, LlmRequest, LlmResponse
from google.genai import types
from pydantic import Field


class ScriptedLlm(BaseLlm):
    """Answers each request with the next step: a str (text) or ``(tool_name, args)``."""

    model: str = "scripted"
    script: list[Any] = Field(default_factory=list)
    seen: list[LlmRequest] = Field(default_factory=list)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.seen.append(llm_request)
        step = self.script.pop(0)
        if isinstance(step, tuple):
            name, args = step
            call = types.Part(function_call=types.FunctionCall(name=name, args=args))
            yield LlmResponse(content=types.Content(role="model", parts=[call]))
            return
        if stream:
            for word in re.findall(r"\S+\s*", step):
                part = types.Part(text=word)
                yield LlmResponse(content=types.Content(role="model", parts=[part]), partial=True)
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=step)]))


def texts(request: LlmRequest) -> list[tuple[str, str]]:
    """``(role, text)`` of every content the model was sent."""
    return [
        (content.role or "", "".join(p.text or "" for p in content.parts or []))
        for content in request.contents
    ]
