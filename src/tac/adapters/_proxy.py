"""The wrapper every ``with_tac_memory`` adapter builds its client proxies on."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar, cast

from tac.adapters._prompt import AdapterOptions, MemoryPromptBuilder
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

ClientT = TypeVar("ClientT")


class Proxy:
    """Forwards every attribute it does not define to the wrapped object; carries the memory
    text the adapter injects."""

    __slots__ = ("_memory", "_target")

    def __init__(self, target: Any, memory: str) -> None:
        self._target = target
        self._memory = memory

    def __getattr__(self, name: str) -> Any:
        if name in Proxy.__slots__:
            raise AttributeError(name)
        return getattr(self._target, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"


class MethodsProxy(Proxy):
    """A proxy whose :attr:`methods` put the memory into each call's keyword arguments
    (:meth:`add_memory`); other attributes go to the wrapped object as they are."""

    __slots__ = ()

    methods: ClassVar[tuple[str, ...]] = ()

    def add_memory(self, kwargs: dict[str, Any]) -> None:
        """Put the memory into one call's keyword arguments (its own dict, not the caller's)."""
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name not in self.methods or not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            self.add_memory(kwargs)
            return method(*args, **kwargs)

        return call


def wrap_client(
    client: ClientT,
    proxy: type[Proxy],
    memory_response: TACMemoryResponse | None,
    context: ConversationSession | None,
    options: AdapterOptions | None,
    *,
    accepted: bool,
    expected: str,
) -> ClientT:
    """``with_tac_memory``'s steps: refuse a client already wrapped, or one that is not
    ``accepted`` (``expected`` names what is), then ``proxy`` it with the memory, or return it
    as it is when there is no memory to add."""
    if isinstance(client, proxy):
        raise TypeError("this client is already wrapped by with_tac_memory")
    if not accepted:
        raise TypeError(f"with_tac_memory expects {expected}, got {type(client).__name__}")
    memory = MemoryPromptBuilder.build(memory_response, context, options)
    if memory is None:
        return client
    return cast(ClientT, proxy(client, memory))
