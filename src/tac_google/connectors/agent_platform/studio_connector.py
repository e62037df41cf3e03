"""Agent Studio apps deployed to Agent Platform Runtime (Agent Engine), over its REST API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac.models.session import ConversationSession
from tac_google.connectors._rest import (
    GoogleAPIError,
    GoogleREST,
    TokenProvider,
    encode_name,
    iter_json,
)
from tac_google.connectors.adk import AgentEngineConnectorBase

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["StudioAgentEngineConnector", "agent_engine_session_id"]

_RESOURCE = re.compile(r"^projects/[^/]+/locations/([^/]+)/reasoningEngines/[^/]+$")


def agent_engine_session_id(conversation_id: str) -> str:
    """An Agent Engine session id for a conversation (lowercase letters, digits and hyphens,
    starting and ending with a letter or digit)."""
    return re.sub(r"[^a-z0-9-]", "-", conversation_id.lower()).strip("-")


def _resource_name(agent: Any) -> str:
    resource = getattr(agent, "api_resource", None)
    found = agent if isinstance(agent, str) else getattr(resource, "name", None)
    if not isinstance(found, str) or not found:
        raise ValueError("agent.api_resource.name is unset: pass a fetched, deployed agent")
    name = found.strip("/")
    if not _RESOURCE.match(name):
        raise ValueError(
            "the agent must be 'projects/<project>/locations/<location>/reasoningEngines/<id>' "
            f"(or a deployed agent object naming one), got {name!r}"
        )
    return name


class StudioAgentEngineConnector(AgentEngineConnectorBase):
    """Answer every channel with an Agent Studio app deployed to Agent Platform Runtime.

    Studio apps are ADK apps without SDK-bound query methods, so this connector uses the
    Agent Engine REST API: a session per conversation (``…/sessions?sessionId=``, its id made
    from the conversation id; one that already exists is reused), ``…:streamQuery`` with
    ``class_method: "async_stream_query"`` for each message, and the session deleted when the
    conversation ends. Memory travels as with :class:`ADKAgentEngineConnector`.

    Args:
        tac: the app's TAC (its HTTP connection pool carries the requests).
        agent: the deployed app (``vertexai.Client().agent_engines.get(name=...)``) or its
            resource name ``projects/<p>/locations/<l>/reasoningEngines/<id>``.
        credentials: ``google.auth`` credentials (default: ``google.auth.default()``).
        token_provider: returns an access token instead (sync or async).
        api_base_url: replaces ``https://<location>-aiplatform.googleapis.com`` (a proxy, a
            private endpoint, or a local stand-in in tests).
        timeout: seconds a request may take.
    """

    def __init__(
        self,
        tac: TAC,
        agent: Any,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
        *,
        credentials: Any = None,
        token_provider: TokenProvider | None = None,
        api_base_url: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.agent = agent
        name = _resource_name(agent)
        location = name.split("/")[3]
        base = (api_base_url or f"https://{location}-aiplatform.googleapis.com").rstrip("/")
        self.base_url = f"{base}/v1/{encode_name(name)}"
        self.rest = GoogleREST(
            tac,
            credentials=credentials,
            token_provider=token_provider,
            timeout=timeout,
            component="StudioAgentEngineConnector",
        )
        super().__init__(
            tac,
            sms_config=sms_config,
            voice_config=voice_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )

    async def create_session(self, session: ConversationSession, user_id: str) -> str:
        session_id = agent_engine_session_id(session.conversation_id)
        url = f"{self.base_url}/sessions?sessionId={session_id}"
        try:
            await self.rest.request("POST", url, {"userId": user_id})
        except GoogleAPIError as exc:
            # a restarted instance finds the session made before: Agent Engine answers 400
            if not (exc.status == 400 and "already exists" in exc.message):
                raise
        return session_id

    async def stream_query(self, message: str, user_id: str, session_id: str) -> AsyncIterator[Any]:
        payload = {
            "class_method": "async_stream_query",
            "input": {"user_id": user_id, "session_id": session_id, "message": message},
        }
        response = await self.rest.request("POST", f"{self.base_url}:streamQuery", payload)
        for event in iter_json(response.text):
            if isinstance(event, dict):
                yield event

    async def delete_session(self, user_id: str, session_id: str) -> None:
        try:
            await self.rest.request("DELETE", f"{self.base_url}/sessions/{session_id}")
        except GoogleAPIError as exc:
            if exc.status != 404:  # already gone (expired) is fine
                raise
