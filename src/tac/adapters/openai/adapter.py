"""Give an OpenAI SDK client TAC's memory: :func:`with_tac_memory`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, cast

from tac.adapters._prompt import AdapterOptions, MemoryPromptBuilder
from tac.adapters._proxy import Proxy as _Proxy
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]

ClientT = TypeVar("ClientT")

_CHAT_METHODS = ("create", "stream", "parse")
_RESPONSES_METHODS = ("create", "stream", "parse")


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


class _CompletionsProxy(_Proxy):
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name not in _CHAT_METHODS or not callable(method):
            return method
        memory = self._memory

        def call(*args: Any, **kwargs: Any) -> Any:
            messages = kwargs.get("messages")
            if isinstance(messages, Iterable) and not isinstance(messages, (str, bytes)):
                kwargs["messages"] = [{"role": "system", "content": memory}, *messages]
            return method(*args, **kwargs)

        return call


class _ResponsesProxy(_Proxy):
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name not in _RESPONSES_METHODS or not callable(method):
            return method
        memory = self._memory

        def call(*args: Any, **kwargs: Any) -> Any:
            current = kwargs.get("instructions")
            prefix = current if isinstance(current, str) and current else None
            kwargs["instructions"] = f"{prefix}\n\n{memory}" if prefix else memory
            return method(*args, **kwargs)

        return call


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
    if isinstance(openai_client, _ClientProxy):
        raise TypeError("this client is already wrapped by with_tac_memory")
    if not isinstance(openai_client, (openai.OpenAI, openai.AsyncOpenAI)):
        raise TypeError(
            "with_tac_memory expects an openai.OpenAI or openai.AsyncOpenAI client, "
            f"got {type(openai_client).__name__}"
        )
    memory = MemoryPromptBuilder.build(memory_response, context, options)
    if memory is None:
        return openai_client
    return cast(ClientT, _ClientProxy(openai_client, memory))
