"""The human-handoff tool: hand the conversation to a Studio flow (and from there to Flex).

The LLM sees one tool, ``handoff(reason)``. When it calls it:

1. the payload is built: conversation id, memory store id, profile id, and the app's
   attributes plus the reason (:class:`~tac.models.handoff.HandoffPayload`);
2. voice: the payload is stored as the session's pending handoff, and the voice channel sends
   ConversationRelay's ``end`` with ``handoffData`` after the reply in progress; Twilio then
   posts it to the ``<Connect action>`` (Studio's voice webhook). Digital channels: a Studio
   execution starts (``POST /v2/Flows/{flow}/Executions``) from the channel's own sender;
3. the conversation's status callbacks are cleared and it goes ``INACTIVE`` (its Conversation
   Intelligence rules run; no more webhooks reach the app);
4. the session ends (digital: at once; voice: when the call's WebSocket closes after ``end``).

Any failure reaches the LLM as ``{"status": "handoff_failed", "reason": ...}`` (and the app's
``on_error``); success as ``{"status": "handoff_initiated", "channel": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from tac._errors import TACError
from tac.context._http import TwilioHTTP, encode_path
from tac.core.errors import TACConfigError
from tac.core.logging import get_logger
from tac.models.handoff import HandoffPayload, PendingHandoffData
from tac.models.session import Channel, ConversationSession
from tac.tools.base import TACTool, create_tool

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = [
    "DEFAULT_HANDOFF_TOOL_DESCRIPTION",
    "DEFAULT_HANDOFF_TOOL_NAME",
    "HandoffError",
    "build_handoff_payload",
    "create_studio_handoff_tool",
    "post_studio_handoff",
    "studio_executions_url",
    "studio_voice_handoff_url",
]

logger = get_logger("tools.handoff")

DEFAULT_HANDOFF_TOOL_NAME = "handoff"
DEFAULT_HANDOFF_TOOL_DESCRIPTION = (
    "Transfer the conversation to a human agent. Use it when the customer asks for a person, "
    "or when you cannot resolve their issue yourself."
)
_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {
            "type": "string",
            "description": "Why the customer needs a human agent, in one sentence.",
        }
    },
    "required": ["reason"],
}
_STUDIO_TIMEOUT = 10.0


def _base_url(product: str, region: str | None, api_base_url: str | None) -> str:
    # TwilioHTTP holds the one rule for product URLs (region, TWILIO_API_BASE_URL); it does no
    # I/O until a request is made.
    http = TwilioHTTP(api_key="-", api_secret="-", region=region, api_base_url=api_base_url)
    return http.base_url(product)


def studio_executions_url(
    flow_sid: str, *, region: str | None = None, api_base_url: str | None = None
) -> str:
    """Studio's Executions endpoint of a flow (region and ``TWILIO_API_BASE_URL`` respected)."""
    path = encode_path("/v2/Flows/{flow}/Executions", flow=flow_sid)
    return _base_url("studio", region, api_base_url) + path


def studio_voice_handoff_url(
    account_sid: str,
    flow_sid: str,
    *,
    region: str | None = None,
    api_base_url: str | None = None,
) -> str:
    """Studio's incoming-call webhook of a flow, for ``<Connect action>`` (voice handoff)."""
    path = encode_path("/v1/Accounts/{account}/Flows/{flow}", account=account_sid, flow=flow_sid)
    return f"{_base_url('webhooks', region, api_base_url)}{path}?Trigger=incomingCall"


def build_handoff_payload(
    session: ConversationSession,
    memory_store_id: str,
    attributes: Mapping[str, Any] | None = None,
) -> HandoffPayload:
    """The payload for a session: its ids, and ``attributes`` (JSON-serialisable) as given."""
    return HandoffPayload(
        conversation_id=session.conversation_id,
        store_id=memory_store_id,
        profile_id=session.profile_id or "",
        attributes=dict(attributes or {}),
    )


async def post_studio_handoff(
    payload: HandoffPayload,
    session: ConversationSession,
    *,
    handoff_url: str,
    from_address: str,
    api_key: str,
    api_secret: str,
    http_client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """Start a Studio execution for the session's customer (``To``) from ``from_address``.

    ``Parameters`` is ``{"HandoffData": payload}``. Returns Studio's answer (the execution);
    raises :class:`httpx.HTTPStatusError` on an error status. The tool built by
    :func:`create_studio_handoff_tool` uses TAC's pooled Studio client instead.
    """
    customer = session.author_info.address if session.author_info else None
    if not customer:
        raise ValueError("the session has no customer address (session.author_info.address)")
    form = {
        "To": customer,
        "From": from_address,
        "Parameters": json.dumps({"HandoffData": payload.to_wire()}),
    }
    auth = httpx.BasicAuth(api_key, api_secret)
    if http_client is not None:
        response = await http_client.post(handoff_url, data=form, auth=auth)
    else:
        async with httpx.AsyncClient(timeout=_STUDIO_TIMEOUT) as client:
            response = await client.post(handoff_url, data=form, auth=auth)
    response.raise_for_status()
    answer: dict[str, Any] = response.json() if response.content else {}
    return answer


class HandoffError(TACError, RuntimeError):
    """A handoff failed (given to ``on_error``); the message is what the LLM is told."""


def _sender(tac: TAC, session: ConversationSession) -> str:
    """The ``From`` of a digital handoff: the app's own address on the session's channel."""
    config = tac.config
    channel = Channel(session.channel)
    agent = session.ai_agent_info.address if session.ai_agent_info else None
    if channel == Channel.WHATSAPP:
        number = config.whatsapp_number or agent
        if not number:
            raise HandoffError("no WhatsApp sender: set TWILIO_WHATSAPP_NUMBER")
        return number if number.lower().startswith("whatsapp:") else f"whatsapp:{number}"
    if channel == Channel.RCS:
        sender = config.rcs_sender_id or agent
        if not sender:
            raise HandoffError("no RCS sender: set TWILIO_RCS_SENDER_ID")
        return sender
    if channel == Channel.CHAT:
        return agent or config.phone_number
    return config.phone_number


def create_studio_handoff_tool(
    tac: TAC,
    session: ConversationSession,
    attributes: Mapping[str, Any] | None = None,
    *,
    name: str = DEFAULT_HANDOFF_TOOL_NAME,
    description: str = DEFAULT_HANDOFF_TOOL_DESCRIPTION,
) -> TACTool:
    """A tool the LLM calls as ``handoff(reason)`` to hand the customer to a human.

    ``attributes`` (JSON-serialisable) travel with every handoff, plus the LLM's ``reason``.
    Build the tool per turn, with the turn's session. Needs ``TWILIO_STUDIO_HANDOFF_FLOW_SID``
    and the Conversation Orchestrator with a memory store
    (``TWILIO_CONVERSATION_CONFIGURATION_ID``).

    Raises:
        TACConfigError: a setting the handoff needs is missing (the error names it).
        TypeError: ``session`` is not a ConversationSession.
        ValueError: ``attributes`` cannot be sent as JSON, or ``name`` is not a valid tool name.
    """
    flow_sid = tac.config.studio_handoff_flow_sid
    if not flow_sid:
        raise TACConfigError(
            "TWILIO_STUDIO_HANDOFF_FLOW_SID",
            "the handoff tool needs the SID (FW…) of the Studio flow that receives handoffs",
        )
    orchestrator = tac.conversation_orchestrator_client
    if orchestrator is None:
        raise TACConfigError(
            "TWILIO_CONVERSATION_CONFIGURATION_ID",
            "the handoff tool needs the Conversation Orchestrator (ConversationRelay-only mode "
            "has no conversation to hand off)",
        )
    if tac.conversation_memory_client is None:
        raise TACConfigError(
            "TWILIO_CONVERSATION_CONFIGURATION_ID",
            "the handoff tool needs a memory store linked to the conversation configuration",
        )
    if not isinstance(session, ConversationSession):
        raise TypeError(f"session must be a ConversationSession, got {type(session).__name__}")
    static = dict(attributes or {})
    try:
        json.dumps(static)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"attributes must be JSON-serialisable: {exc}") from None
    done: dict[str, Any] = {}

    async def handoff(reason: str) -> dict[str, Any]:
        channel = Channel(session.channel)
        if done:
            return dict(done)
        cid = session.conversation_id
        context = {"conversation_id": cid, "channel": channel.value, "tool": name}
        try:
            try:
                store_id = await tac.memory_store_id()
            except Exception as exc:
                raise HandoffError(f"the memory store is unknown: {exc}") from exc
            if not store_id:
                raise HandoffError("no memory store is linked to the conversation")
            text = reason.strip() if isinstance(reason, str) else ""
            payload = build_handoff_payload(session, store_id, {**static, "reason": text})
            if channel == Channel.VOICE:
                data = payload.to_json()
                await tac.set_pending_handoff(cid, data)
                session.pending_handoff_data = PendingHandoffData(handoff_data=data)
            else:
                customer = session.author_info.address if session.author_info else None
                if not customer:
                    raise HandoffError("the customer's address is unknown")
                try:
                    await tac.studio_client.create_execution(
                        flow_sid,
                        to=customer,
                        from_=_sender(tac, session),
                        parameters={"HandoffData": payload.to_wire()},
                    )
                except HandoffError:
                    raise
                except Exception as exc:
                    raise HandoffError(f"Studio did not start the handoff flow: {exc}") from exc
        except HandoffError as exc:
            logger.warning("handoff failed: %s", exc, **context)
            await tac.trigger_error(exc, context)
            return {"status": "handoff_failed", "reason": str(exc)}
        except Exception as exc:
            logger.warning("handoff failed: %s", exc, **context)
            await tac.trigger_error(exc, context)
            return {"status": "handoff_failed", "reason": f"{type(exc).__name__}: {exc}"}

        done.update(status="handoff_initiated", channel=channel.value)
        await _release_conversation(tac, cid, context)
        if channel != Channel.VOICE:
            await tac.end_session(cid, reason="handoff")
        logger.info("handed off to a human", **context)
        return dict(done)

    return create_tool(name, description, _PARAMETERS, handoff)


async def _release_conversation(tac: TAC, conversation_id: str, context: dict[str, Any]) -> None:
    """Stop the app's webhooks for the conversation and mark it INACTIVE (failures reported)."""
    orchestrator = tac.conversation_orchestrator_client
    assert orchestrator is not None
    try:
        await orchestrator.clear_status_callbacks(conversation_id)
    except Exception as exc:
        logger.warning("handoff: clearing status callbacks failed: %s", exc, **context)
        await tac.trigger_error(exc, {**context, "step": "clear_status_callbacks"})
    try:
        await orchestrator.update_conversation(conversation_id, "INACTIVE")
    except Exception as exc:
        logger.warning("handoff: marking the conversation INACTIVE failed: %s", exc, **context)
        await tac.trigger_error(exc, {**context, "step": "update_conversation"})
