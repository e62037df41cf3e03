"""Give an Anthropic SDK client TAC's memory: :func:`with_tac_memory`."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from tac.adapters._prompt import AdapterOptions, MemoryPromptBuilder
from tac.adapters._proxy import Proxy as _Proxy
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]

ClientT = TypeVar("ClientT")

_METHODS = ("create", "stream", "count_tokens")


def add_to_system(system: Any, memory: str) -> Any:
    """Anthropic's ``system`` (absent, a string or a list of text blocks) plus the memory."""
    if system is None or system == "":
        return memory
    if isinstance(system, str):
        return f"{system}\n\n{memory}"
    return [*system, {"type": "text", "text": memory}]


class _ClientProxy(_Proxy):
    __slots__ = ()

    @property
    def messages(self) -> _MessagesProxy:
        return _MessagesProxy(self._target.messages, self._memory)

    def with_options(self, **options: Any) -> _ClientProxy:
        return _ClientProxy(self._target.with_options(**options), self._memory)

    @property
    def unwrapped(self) -> Any:
        """The original client."""
        return self._target


class _MessagesProxy(_Proxy):
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name not in _METHODS or not callable(method):
            return method
        memory = self._memory

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs["system"] = add_to_system(kwargs.get("system"), memory)
            return method(*args, **kwargs)

        return call


def with_tac_memory(
    anthropic_client: ClientT,
    memory_response: TACMemoryResponse | None = None,
    context: ConversationSession | None = None,
    options: AdapterOptions | None = None,
) -> ClientT:
    """Wrap an ``Anthropic`` or ``AsyncAnthropic`` client (or its Bedrock/Vertex variants) so
    that ``messages.create`` / ``stream`` / ``count_tokens`` carry the memory in ``system``.

    Neither the client nor the caller's arguments are modified; with nothing to add, the client
    itself is returned.
    """
    if isinstance(anthropic_client, _ClientProxy):
        raise TypeError("this client is already wrapped by with_tac_memory")
    if not hasattr(anthropic_client, "messages"):
        raise TypeError(
            f"with_tac_memory expects an Anthropic client, got {type(anthropic_client).__name__}"
        )
    memory = MemoryPromptBuilder.build(memory_response, context, options)
    if memory is None:
        return anthropic_client
    return cast(ClientT, _ClientProxy(anthropic_client, memory))
