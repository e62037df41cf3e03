"""How a call reaches the Orchestrator (Twilio records a ConversationRelay call's conversation
and transcriptions when the TwiML names ``conversationConfiguration``)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from tac_sandbox.phone.record import (
    CallerError,
)


class OrchestratorLink(Protocol):
    """What Twilio does in the Conversation Orchestrator for a call with
    ``conversationConfiguration``: create the call's conversation, record what is said."""

    async def create_voice_conversation(
        self, configuration_id: str, call_sid: str, customer: str, agent: str
    ) -> dict[str, Any]: ...

    async def add_voice_communication(
        self,
        conversation_id: str,
        call_sid: str,
        *,
        author: str,
        recipient: str,
        text: str,
        inbound: bool,
    ) -> dict[str, Any]: ...

    async def end_voice_conversation(self, conversation_id: str) -> None: ...


class HttpOrchestratorLink:
    """An :class:`OrchestratorLink` through a running sandbox's control API."""

    def __init__(self, sandbox_url: str, auth: tuple[str, str], http: httpx.AsyncClient) -> None:
        self.url = sandbox_url.rstrip("/")
        self.auth = auth
        self.http = http

    async def _send(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        response = await self.http.request(method, f"{self.url}{path}", json=body, auth=self.auth)
        if response.status_code >= 400:
            raise CallerError(
                f"the sandbox at {self.url} answered {response.status_code} to {path}:"
                f" {response.text[:500]}"
            )
        return response

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = (await self._send("POST", path, body)).json()
        return result

    async def create_voice_conversation(
        self, configuration_id: str, call_sid: str, customer: str, agent: str
    ) -> dict[str, Any]:
        body = {
            "configurationId": configuration_id,
            "callSid": call_sid,
            "customer": customer,
            "agent": agent,
        }
        return await self._post("/sandbox/voice/conversations", body)

    async def add_voice_communication(
        self,
        conversation_id: str,
        call_sid: str,
        *,
        author: str,
        recipient: str,
        text: str,
        inbound: bool,
    ) -> dict[str, Any]:
        body = {
            "callSid": call_sid,
            "author": author,
            "recipient": recipient,
            "text": text,
            "inbound": inbound,
        }
        return await self._post(
            f"/sandbox/voice/conversations/{conversation_id}/communications", body
        )

    async def end_voice_conversation(self, conversation_id: str) -> None:
        path = f"/conversations/v2/Conversations/{conversation_id}"
        await self._send("PATCH", path, {"status": "CLOSED"})
