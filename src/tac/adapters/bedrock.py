"""Give a Bedrock Runtime client TAC's memory for the Converse API: :func:`with_tac_memory`."""

from __future__ import annotations

from typing import Any

from tac.adapters._prompt import AdapterOptions
from tac.adapters._proxy import ClientT, MethodsProxy, wrap_client
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["with_tac_memory"]


class _RuntimeProxy(MethodsProxy):
    __slots__ = ()
    methods = ("converse", "converse_stream")

    def add_memory(self, kwargs: dict[str, Any]) -> None:
        kwargs["system"] = [*(kwargs.get("system") or []), {"text": self._memory}]

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
    return wrap_client(
        bedrock_runtime_client,
        _RuntimeProxy,
        memory_response,
        context,
        options,
        accepted=callable(getattr(bedrock_runtime_client, "converse", None)),
        expected="a bedrock-runtime client",
    )
