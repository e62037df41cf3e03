"""Give a Bedrock Runtime client TAC's memory for the Converse API: :func:`with_tac_memory`."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from tac.adapters._prompt import AdapterOptions, MemoryPromptBuilder
from tac.adapters._proxy import Proxy as _Proxy
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]

ClientT = TypeVar("ClientT")

_METHODS = ("converse", "converse_stream")


class _RuntimeProxy(_Proxy):
    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if name not in _METHODS or not callable(method):
            return method
        memory = self._memory

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs["system"] = [*(kwargs.get("system") or []), {"text": memory}]
            return method(*args, **kwargs)

        return call

    @property
    def unwrapped(self) -> Any:
        """The original client."""
        return self._target


def with_tac_memory(
    bedrock_runtime_client: ClientT,
    memory_response: TACMemoryResponse | None = None,
    context: ConversationSession | None = None,
    options: AdapterOptions | None = None,
) -> ClientT:
    """Wrap a ``bedrock-runtime`` client (boto3, or aioboto3's async one) so that ``converse``
    and ``converse_stream`` carry the memory as one more ``system`` block.

    boto3's client blocks: in async code call it with ``asyncio.to_thread``, or use aioboto3.
    Neither the client nor the caller's arguments are modified; with nothing to add, the client
    itself is returned.
    """
    if isinstance(bedrock_runtime_client, _RuntimeProxy):
        raise TypeError("this client is already wrapped by with_tac_memory")
    if not callable(getattr(bedrock_runtime_client, "converse", None)):
        raise TypeError(
            "with_tac_memory expects a bedrock-runtime client, "
            f"got {type(bedrock_runtime_client).__name__}"
        )
    memory = MemoryPromptBuilder.build(memory_response, context, options)
    if memory is None:
        return bedrock_runtime_client
    return cast(ClientT, _RuntimeProxy(bedrock_runtime_client, memory))
