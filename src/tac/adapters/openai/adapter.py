"""Give an OpenAI SDK client TAC's memory: :func:`with_tac_memory`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tac.adapters._prompt import AdapterOptions
from tac.adapters._proxy import ClientT, MethodsProxy, wrap_client
from tac.adapters._proxy import Proxy as _Proxy
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]


class _ClientProxy(_Proxy):
    __slots__ = ()

    @property
    def chat(self) -> _ChatProxy:
        return _ChatProxy(self._target.chat, self._memory)

    @property
    def responses(self) -> _ResponsesProxy:
        return _ResponsesProxy(self._target.responses, self._memory)

    def with_options(self, **options: Any) -> _ClientProxy:
        return _ClientProxy(self._target.with_options(**options), self._memory)

    def copy(self, **options: Any) -> _ClientProxy:
        return _ClientProxy(self._target.copy(**options), self._memory)

    @property
    def unwrapped(self) -> Any:
        """The original client."""
        return self._target


class _ChatProxy(_Proxy):
    __slots__ = ()

    @property
    def completions(self) -> _CompletionsProxy:
        return _CompletionsProxy(self._target.completions, self._memory)


class _CompletionsProxy(MethodsProxy):
    __slots__ = ()
    methods = ("create", "stream", "parse")

    def add_memory(self, kwargs: dict[str, Any]) -> None:
        messages = kwargs.get("messages")
        if isinstance(messages, Iterable) and not isinstance(messages, (str, bytes)):
            kwargs["messages"] = [{"role": "system", "content": self._memory}, *messages]


class _ResponsesProxy(MethodsProxy):
    __slots__ = ()
    methods = ("create", "stream", "parse")

    def add_memory(self, kwargs: dict[str, Any]) -> None:
        current = kwargs.get("instructions")
        prefix = current if isinstance(current, str) and current else None
        kwargs["instructions"] = f"{prefix}\n\n{self._memory}" if prefix else self._memory


def with_tac_memory(
    openai_client: ClientT,
    memory_response: TACMemoryResponse | None = None,
    context: ConversationSession | None = None,
    options: AdapterOptions | None = None,
) -> ClientT:
    """Wrap an ``OpenAI`` or ``AsyncOpenAI`` client so that its requests carry the memory.

    ``chat.completions.create`` / ``stream`` / ``parse`` get a ``system`` message with the
    customer context first in (a copy of) ``messages``; ``responses.create`` / ``stream`` /
    ``parse`` get it appended to ``instructions``. Everything else goes to the client as is;
    neither the client nor the caller's arguments are modified. With nothing to add, the
    client itself is returned.
    """
    try:
        import openai
    except ImportError as exc:
        raise ImportError(
            'with_tac_memory needs the OpenAI SDK: pip install "opentac[openai]"'
        ) from exc
    return wrap_client(
        openai_client,
        _ClientProxy,
        memory_response,
        context,
        options,
        accepted=isinstance(openai_client, (openai.OpenAI, openai.AsyncOpenAI)),
        expected="an openai.OpenAI or openai.AsyncOpenAI client",
    )
