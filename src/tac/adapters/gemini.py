"""Give a Google Gen AI SDK client (Gemini) TAC's memory: :func:`with_tac_memory`."""

from __future__ import annotations

from typing import Any, ClassVar

from tac.adapters._prompt import AdapterOptions
from tac.adapters._proxy import ClientT, MethodsProxy, wrap_client
from tac.adapters._proxy import Proxy as _Proxy
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]


def add_to_config(config: Any, memory: str) -> Any:
    """A ``GenerateContentConfig`` (or its dict form, or ``None``) whose
    ``system_instruction`` ends with the memory; the original is left as it was."""
    if config is None:
        return {"system_instruction": memory}
    if isinstance(config, dict):
        current = config.get("system_instruction", config.get("systemInstruction"))
        merged = {k: v for k, v in config.items() if k != "systemInstruction"}
        merged["system_instruction"] = _add(current, memory)
        return merged
    current = getattr(config, "system_instruction", None)
    return config.model_copy(update={"system_instruction": _add(current, memory)})


def _add(instruction: Any, memory: str) -> Any:
    if instruction is None or instruction == "":
        return memory
    if isinstance(instruction, str):
        return f"{instruction}\n\n{memory}"
    if isinstance(instruction, list):
        return [*instruction, memory]
    parts = getattr(instruction, "parts", None)
    if parts is not None:  # a types.Content
        part_type = type(parts[0]) if parts else None
        extra = part_type(text=memory) if part_type is not None else {"text": memory}
        return instruction.model_copy(update={"parts": [*parts, extra]})
    if isinstance(instruction, dict) and "parts" in instruction:
        return {**instruction, "parts": [*instruction["parts"], {"text": memory}]}
    return [instruction, memory]


class _ModelsProxy(MethodsProxy):
    __slots__ = ()
    methods: ClassVar[tuple[str, ...]] = (
        "generate_content",
        "generate_content_stream",
        "count_tokens",
    )

    def add_memory(self, kwargs: dict[str, Any]) -> None:
        kwargs["config"] = add_to_config(kwargs.get("config"), self._memory)


class _ChatsProxy(_ModelsProxy):
    __slots__ = ()
    methods = ("create",)


class _AioProxy(_Proxy):
    __slots__ = ()

    @property
    def models(self) -> _ModelsProxy:
        return _ModelsProxy(self._target.models, self._memory)

    @property
    def chats(self) -> _ChatsProxy:
        return _ChatsProxy(self._target.chats, self._memory)


class _ClientProxy(_AioProxy):
    __slots__ = ()

    @property
    def aio(self) -> _AioProxy:
        return _AioProxy(self._target.aio, self._memory)

    @property
    def unwrapped(self) -> Any:
        """The original client."""
        return self._target


def with_tac_memory(
    genai_client: ClientT,
    memory_response: TACMemoryResponse | None = None,
    context: ConversationSession | None = None,
    options: AdapterOptions | None = None,
) -> ClientT:
    """Wrap a ``google.genai.Client`` so that ``models.generate_content`` /
    ``generate_content_stream`` / ``count_tokens`` and ``chats.create`` (and the same under
    ``client.aio``) carry the memory at the end of ``config.system_instruction``.

    Neither the client nor the caller's arguments are modified; with nothing to add, the client
    itself is returned.
    """
    return wrap_client(
        genai_client,
        _ClientProxy,
        memory_response,
        context,
        options,
        accepted=hasattr(genai_client, "models"),
        expected="a google.genai.Client",
    )
