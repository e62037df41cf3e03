"""Give an Anthropic SDK client TAC's memory: :func:`with_tac_memory`."""

from __future__ import annotations

from typing import Any

from tac.adapters._prompt import AdapterOptions
from tac.adapters._proxy import ClientT, MethodsProxy, wrap_client
from tac.adapters._proxy import Proxy as _Proxy
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]


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


class _MessagesProxy(MethodsProxy):
    __slots__ = ()
    methods = ("create", "stream", "count_tokens")

    def add_memory(self, kwargs: dict[str, Any]) -> None:
        kwargs["system"] = add_to_system(kwargs.get("system"), self._memory)


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
    return wrap_client(
        anthropic_client,
        _ClientProxy,
        memory_response,
        context,
        options,
        accepted=hasattr(anthropic_client, "messages"),
        expected="an Anthropic client",
    )
