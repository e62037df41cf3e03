"""Agents built in Conversational Agents (Dialogflow CX), over the ``detectIntent`` REST API."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tac.connectors import Turn
from tac.connectors.streaming import RunEvent
from tac.models.session import ConversationSession
from tac_google.connectors._base import GoogleConnector, logger, reply_text
from tac_google.connectors._rest import GoogleREST, TokenProvider, encode_name, parse_agent_id

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["ConversationalAgentsConnector", "dialogflow_session_id"]

_SESSIONS = uuid.UUID("0f5d2a8e-2b1c-5c47-9a3e-7d61c0b4e915")


def dialogflow_session_id(conversation_id: str) -> str:
    """The Dialogflow CX session id of a conversation: a UUID made from its id (session ids
    have at most 36 characters), the same on every turn and every instance."""
    return str(uuid.uuid5(_SESSIONS, conversation_id))


class ConversationalAgentsConnector(GoogleConnector):
    """Answer every channel with a Conversational Agents (Dialogflow CX) agent, Flow- or
    Playbook-based, through ``detectIntent`` (v3), text in and text out.

    Dialogflow keeps the history in a session per conversation (:func:`dialogflow_session_id`).
    The memory is put before the customer's message, only when it changed since it was last
    sent. The agent's signals become TAC's: ``liveAgentHandoff`` starts TAC's Studio handoff
    (``TWILIO_STUDIO_HANDOFF_FLOW_SID``; its ``metadata`` joins the handoff's attributes) or,
    without one, ends the call with the metadata as ``handoffData``; ``endInteraction`` ends the
    call after the reply. (The partner package ignores both.)

    Args:
        tac: the app's TAC (its HTTP connection pool carries the requests).
        agent_id: ``projects/<project>/locations/<location>/agents/<agent-id>``.
        language_code: the language of the queries.
        credentials: ``google.auth`` credentials (default: ``google.auth.default()``).
        token_provider: returns an access token instead (sync or async).
        api_base_url: replaces ``https://[<location>-]dialogflow.googleapis.com``.
        timeout: seconds a request may take.

    Raises:
        ValueError: ``agent_id`` is not an agent's resource name.
    """

    def __init__(
        self,
        tac: TAC,
        agent_id: str,
        language_code: str = "en",
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
        *,
        credentials: Any = None,
        token_provider: TokenProvider | None = None,
        api_base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.agent_id, project, location = parse_agent_id(agent_id, "agents")
        self.language_code = language_code
        host = "dialogflow.googleapis.com"
        if location != "global":
            host = f"{location}-{host}"
        self.base_url = (api_base_url or f"https://{host}").rstrip("/")
        self.rest = GoogleREST(
            tac,
            credentials=credentials,
            token_provider=token_provider,
            user_project=project,
            timeout=timeout,
            component="ConversationalAgentsConnector",
        )
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )

    def session_name(self, session: ConversationSession) -> str:
        """The Dialogflow session of a conversation."""
        return f"{self.agent_id}/sessions/{dialogflow_session_id(session.conversation_id)}"

    async def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        url = f"{self.base_url}/v3/{encode_name(self.session_name(turn.session))}:detectIntent"
        data = await self.send_with_memory(
            turn,
            lambda text: self.rest.post_json(
                url, {"queryInput": {"text": {"text": text}, "languageCode": self.language_code}}
            ),
        )
        result = data.get("queryResult")
        messages = result.get("responseMessages") if isinstance(result, Mapping) else None
        messages = [m for m in messages or [] if isinstance(m, Mapping)]
        reply = reply_text(
            t
            for m in messages
            if isinstance(m.get("text"), Mapping)
            for t in m["text"].get("text") or []
        )
        if reply:
            yield reply
        else:
            logger.warning(
                "Dialogflow answered without text", conversation_id=turn.session.conversation_id
            )
        for message in messages:
            if isinstance(message.get("liveAgentHandoff"), Mapping):
                metadata = message["liveAgentHandoff"].get("metadata")
                await self._hand_off(turn.session, metadata if isinstance(metadata, dict) else {})
                return
        if any("endInteraction" in m for m in messages):
            self.end_call(turn.session)

    async def _hand_off(self, session: ConversationSession, metadata: dict[str, Any]) -> None:
        cid = session.conversation_id
        if self.tac.config.studio_handoff_flow_sid and self.tac.is_orchestrator_enabled():
            from tac.tools.handoff import create_studio_handoff_tool

            reason = str(metadata.get("reason") or "The agent handed the conversation over.")
            attributes = {k: v for k, v in metadata.items() if k != "reason"}
            handoff = create_studio_handoff_tool(self.tac, session, attributes)
            result = await handoff(reason=reason)
            logger.info(
                "Dialogflow handed the conversation off", conversation_id=cid, result=result
            )
        elif not self.end_call(session, json.dumps(metadata)):
            logger.warning(
                "Dialogflow asked for a live agent, but TWILIO_STUDIO_HANDOFF_FLOW_SID is unset",
                conversation_id=cid,
            )
