"""Amazon Bedrock Agents on TAC: :class:`BedrockConnector`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from tac.adapters import MemoryPromptBuilder
from tac.connectors import Turn
from tac.connectors.streaming import RunEvent
from tac.core.partner import PartnerConnector
from tac.models.session import ConversationSession
from tac_aws.connectors._base import AWSConnector, call_off_loop, iterate_off_loop

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["BedrockConnector"]

InvokeFn = Callable[[ConversationSession, str, "str | None"], Any]


class BedrockConnector(AWSConnector):
    """Answer every channel with a Bedrock Agent (``bedrock-agent-runtime`` ``invoke_agent``).

    Either ``bedrock_client`` + ``config`` (the ``invoke_agent`` arguments; ``sessionId`` is
    the conversation id, ``inputText`` the memory then the message) or ``invoke_fn(session,
    message, memory_context)`` returning ``invoke_agent``'s response. boto3 blocks, so the call
    and the reading of the completion stream run in worker threads; an async ``invoke_fn`` is
    awaited. The agent's session lives in Bedrock (``sessionId`` = the conversation id).

    Attributes: ``channels`` (:class:`ConnectorChannels`), ``voice``, ``sms``, ``chat``,
    ``rcs``, ``whatsapp``.
    """

    partner = PartnerConnector.AWS_BEDROCK

    def __init__(
        self,
        tac: TAC,
        bedrock_client: Any = None,
        config: Mapping[str, Any] | None = None,
        invoke_fn: InvokeFn | None = None,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
    ) -> None:
        if invoke_fn is not None:
            if bedrock_client is not None or config is not None:
                raise ValueError("pass invoke_fn, or bedrock_client and config, not both")
            self.invoke_fn: InvokeFn = invoke_fn
        elif bedrock_client is not None and config is not None:
            self.invoke_fn = _invoke_with(bedrock_client, dict(config))
        else:
            raise ValueError("BedrockConnector needs invoke_fn, or bedrock_client and config")
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        memory = MemoryPromptBuilder.build(turn.memory, turn.session)
        response = await call_off_loop(self.invoke_fn, turn.session, turn.message, memory)
        async for event in iterate_off_loop(response.get("completion") or ()):
            chunk = event.get("chunk") if isinstance(event, Mapping) else None
            data = chunk.get("bytes") if isinstance(chunk, Mapping) else None
            if isinstance(data, bytes):
                yield data.decode("utf-8", errors="replace")


def _invoke_with(client: Any, base: dict[str, Any]) -> InvokeFn:
    def invoke(session: ConversationSession, message: str, memory: str | None) -> Any:
        text = f"{memory}\n\nUser: {message}" if memory else message
        return client.invoke_agent(
            **{**base, "sessionId": session.conversation_id, "inputText": text}
        )

    return invoke
