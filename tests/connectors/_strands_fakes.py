"""A stand-in for ``strands.Agent``, following its documented interface: ``messages`` (Bedrock
Converse messages), ``system_prompt``, ``async stream_async(prompt)`` yielding ``{"data": …}``
text events and ``{"message": …}`` for each message it adds, and ``cleanup()``. Its "model"
is a script shared by every agent, which says what each model call answers."""

from __future__ import annotations

import asyncio
import copy
import inspect
import types
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelCall:
    system_prompt: str | None
    messages: list[dict[str, Any]]

    def texts(self) -> list[tuple[str, str]]:
        """``(role, text)`` of every text block, in order."""
        return [
            (message["role"], block["text"])
            for message in self.messages
            for block in message["content"]
            if "text" in block
        ]


@dataclass
class Script:
    """What the model answers, in order: text, or a tool call (``args`` may be a function
    called when the model "decides", for values known only then)."""

    steps: list[tuple[str, Any, Any]] = field(default_factory=list)
    calls: list[ModelCall] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set up, each chunk waits for it

    def reply(self, text: str) -> Script:
        self.steps.append(("text", text, None))
        return self

    def call_tool(self, name: str, args: dict[str, Any] | Callable[[], dict[str, Any]]) -> Script:
        self.steps.append(("tool", name, args))
        return self


class FakeStrandsAgent:
    def __init__(self, script: Script, tools: list[Any] = (), system_prompt: str | None = None):
        self.script = script
        self.tools = {getattr(t, "tool_name", None) or t.__name__: t for t in tools}
        self.system_prompt = system_prompt
        self.messages: list[dict[str, Any]] = []
        self.cleaned = False
        self._busy = False

    async def stream_async(self, prompt: Any) -> AsyncIterator[dict[str, Any]]:
        if self._busy:
            raise RuntimeError("ConcurrencyException: the agent is already running")
        self._busy = True
        try:
            content = prompt if isinstance(prompt, list) else [{"text": prompt}]
            self.messages.append({"role": "user", "content": content})
            while True:
                self.script.calls.append(
                    ModelCall(self.system_prompt, copy.deepcopy(self.messages))
                )
                kind, value, args = self.script.steps.pop(0)
                if kind == "tool":
                    arguments = args() if callable(args) else args
                    use_id = f"tooluse_{len(self.script.calls)}"
                    use = {"toolUse": {"toolUseId": use_id, "name": value, "input": arguments}}
                    message = {"role": "assistant", "content": [use]}
                    self.messages.append(message)
                    yield {"message": message}
                    output = self.tools[value](**arguments)
                    if inspect.isawaitable(output):
                        output = await output
                    result = {
                        "toolUseId": use_id,
                        "status": "success",
                        "content": [{"json": output}],
                    }
                    message = {"role": "user", "content": [{"toolResult": result}]}
                    self.messages.append(message)
                    yield {"message": message}
                    continue
                for index, word in enumerate(value.split(" ")):
                    if self.script.gate is not None:
                        await self.script.gate.wait()
                    await asyncio.sleep(0.005)
                    yield {"data": word if index == 0 else " " + word}
                message = {"role": "assistant", "content": [{"text": value}]}
                self.messages.append(message)
                yield {"message": message}
                yield {"result": value}
                return
        finally:
            self._busy = False

    def cleanup(self) -> None:
        self.cleaned = True


def fake_strands_module() -> types.ModuleType:
    """A ``strands`` module with what opentac's docs and tool use of it: ``Agent(model=…,
    tools=…, system_prompt=…)`` (``model`` is a :class:`Script`) and the ``tool`` decorator."""
    module = types.ModuleType("strands")

    def agent(
        model: Script, tools: list[Any] = (), system_prompt: str | None = None, **_: Any
    ) -> FakeStrandsAgent:
        return FakeStrandsAgent(model, list(tools), system_prompt)

    module.Agent = agent  # type: ignore[attr-defined]
    module.tool = lambda function: function  # type: ignore[attr-defined]
    return module
