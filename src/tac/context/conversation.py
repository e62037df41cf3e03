"""Async client of Conversation Orchestrator v2 (``conversations.twilio.com``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tac.context._base import ProductClient, parse_model
from tac.context._http import TwilioHTTP, encode_path
from tac.context.errors import ConflictError
from tac.core.logging import get_logger
from tac.models.conversation import (
    ActionResponse,
    Communication,
    CommunicationRequest,
    ConversationConfiguration,
    ConversationRequest,
    ConversationResponse,
    ConversationStatus,
    Participant,
    ParticipantRequest,
    SendMessageActionRequest,
)

__all__ = ["ConversationClient"]

logger = get_logger("context")

_STATUSES = ("ACTIVE", "INACTIVE", "CLOSED")


class ConversationClient(ProductClient):
    """Conversations, participants, communications and actions (replies) of Orchestrator.

    Build it over the TAC instance's shared transport (``ConversationClient(http=http,
    configuration_id=...)``) or, as the reference SDK allows, from credentials
    (``ConversationClient(api_key, api_secret, configuration_id, region)``; then close it
    with :meth:`aclose`).
    """

    _product = "conversations"

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        configuration_id: str | None = None,
        region: str | None = None,
        *,
        http: TwilioHTTP | None = None,
    ) -> None:
        super().__init__(http=http, api_key=api_key, api_secret=api_secret, region=region)
        self.configuration_id = configuration_id

    # Configuration ---------------------------------------------------------------------------

    async def get_configuration(
        self, configuration_id: str | None = None
    ) -> ConversationConfiguration:
        """Fetch a conversation configuration (default: this client's ``configuration_id``)."""
        config_id = configuration_id or self.configuration_id
        if not config_id:
            raise ValueError(
                "configuration_id is required: pass it here or to ConversationClient(...)"
            )
        path = encode_path("/v2/ControlPlane/Configurations/{id}", id=config_id)
        response = await self._http.request(self._product, "GET", path)
        return parse_model(ConversationConfiguration, response)

    # Conversations ---------------------------------------------------------------------------

    async def list_conversations(
        self,
        status: str | Sequence[str] | None = None,
        channel_id: str | None = None,
        page_size: int | None = None,
        *,
        max_pages: int = 100,
    ) -> list[ConversationResponse]:
        """Every conversation matching the filters, across all pages.

        Args:
            status: ``"ACTIVE"``, ``"INACTIVE"``, ``"CLOSED"`` or several of them.
            channel_id: a CallSid or MessageSid (voice finds its conversation this way).
        """
        params: dict[str, Any] = {}
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for value in statuses:
                if value.upper() not in _STATUSES:
                    raise ValueError(f"status must be one of {_STATUSES}, got {value!r}")
            params["status"] = [value.upper() for value in statuses]
        if channel_id is not None:
            params["channelId"] = channel_id
        return await self._collect(
            "/v2/Conversations",
            "conversations",
            ConversationResponse,
            params=params,
            page_size=page_size,
            max_pages=max_pages,
        )

    async def get_conversation(self, conversation_id: str) -> ConversationResponse:
        """Fetch one conversation."""
        path = encode_path("/v2/Conversations/{id}", id=conversation_id)
        response = await self._http.request(self._product, "GET", path)
        return parse_model(ConversationResponse, response)

    async def create_conversation(
        self, request: ConversationRequest, idempotency_key: str | None = None
    ) -> ConversationResponse:
        """Create a conversation (409 :class:`ConflictError` when an active one exists).

        With ``idempotency_key`` (sent as ``Idempotency-Key``) the request is retried on any
        transient failure; without one, only when it surely did not reach Twilio.
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = await self._http.request(
            self._product,
            "POST",
            "/v2/Conversations",
            json=request.to_wire(),
            headers=headers,
            retry="safe" if idempotency_key else "unsent_only",
        )
        return parse_model(ConversationResponse, response)

    async def create_or_reuse_conversation(
        self, request: ConversationRequest, idempotency_key: str | None = None
    ) -> tuple[str, bool]:
        """Create a conversation, or reuse the active one Twilio reports on 409.

        Returns:
            ``(conversation_id, reused)``.

        Raises:
            ConflictError: a 409 that does not name the existing conversation.
        """
        try:
            created = await self.create_conversation(request, idempotency_key=idempotency_key)
        except ConflictError as exc:
            existing = exc.conflicting_resource_id
            if existing is None:
                raise
            logger.info("reusing active conversation %s (409 on create)", existing)
            return existing, True
        return created.id, False

    async def update_conversation(
        self, conversation_id: str, status: ConversationStatus, name: str | None = None
    ) -> ConversationResponse:
        """Replace the conversation's status (and name): ``PUT /v2/Conversations/{id}``."""
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}, got {status!r}")
        body: dict[str, Any] = {"status": status}
        if name is not None:
            body["name"] = name
        path = encode_path("/v2/Conversations/{id}", id=conversation_id)
        response = await self._http.request(self._product, "PUT", path, json=body)
        return parse_model(ConversationResponse, response)

    async def patch_conversation(
        self, conversation_id: str, body: dict[str, Any]
    ) -> ConversationResponse:
        """Merge-patch a conversation (``name``, ``status``, ``configuration``, ``metadata``)."""
        if not isinstance(body, dict) or not body:
            raise ValueError("body must be a non-empty dict")
        path = encode_path("/v2/Conversations/{id}", id=conversation_id)
        response = await self._http.request(self._product, "PATCH", path, json=body)
        return parse_model(ConversationResponse, response)

    async def clear_status_callbacks(self, conversation_id: str) -> None:
        """Stop webhooks for this conversation (handoff): ``statusCallbacks: []``."""
        path = encode_path("/v2/Conversations/{id}", id=conversation_id)
        await self._http.request(
            self._product, "PATCH", path, json={"configuration": {"statusCallbacks": []}}
        )

    # Participants ----------------------------------------------------------------------------

    async def list_participants(
        self, conversation_id: str, *, page_size: int | None = None, max_pages: int = 100
    ) -> list[Participant]:
        """Every participant of the conversation, across all pages (errors raise)."""
        path = encode_path("/v2/Conversations/{id}/Participants", id=conversation_id)
        return await self._collect(
            path, "participants", Participant, page_size=page_size, max_pages=max_pages
        )

    async def add_participant(
        self, conversation_id: str, request: ParticipantRequest
    ) -> Participant:
        """Add a participant (409 :class:`ConflictError` when the address is already in)."""
        path = encode_path("/v2/Conversations/{id}/Participants", id=conversation_id)
        response = await self._http.request(
            self._product, "POST", path, json=request.to_wire(), retry="unsent_only"
        )
        return parse_model(Participant, response)

    async def update_participant(
        self, conversation_id: str, participant_id: str, request: ParticipantRequest
    ) -> Participant:
        """Replace a participant (PUT: fields left out are cleared)."""
        path = encode_path(
            "/v2/Conversations/{cid}/Participants/{pid}", cid=conversation_id, pid=participant_id
        )
        response = await self._http.request(self._product, "PUT", path, json=request.to_wire())
        return parse_model(Participant, response)

    # Communications --------------------------------------------------------------------------

    async def create_communication(
        self, conversation_id: str, request: CommunicationRequest
    ) -> Communication:
        """Record a communication; with a ``resource_id`` it is an upsert, hence retried freely."""
        path = encode_path("/v2/Conversations/{id}/Communications", id=conversation_id)
        response = await self._http.request(
            self._product,
            "POST",
            path,
            json=request.to_wire(),
            retry="safe" if request.resource_id else "unsent_only",
        )
        return parse_model(Communication, response)

    async def list_communications(
        self,
        conversation_id: str,
        channel_id: str | None = None,
        page_size: int | None = None,
        limit: int | None = None,
        *,
        max_pages: int = 100,
    ) -> list[Communication]:
        """The conversation's communications in Twilio's order, across pages, at most ``limit``."""
        path = encode_path("/v2/Conversations/{id}/Communications", id=conversation_id)
        params = {"channelId": channel_id} if channel_id is not None else None
        return await self._collect(
            path,
            "communications",
            Communication,
            params=params,
            page_size=page_size,
            max_pages=max_pages,
            limit=limit,
        )

    # Actions ---------------------------------------------------------------------------------

    async def create_action(
        self, conversation_id: str, request: SendMessageActionRequest
    ) -> ActionResponse:
        """Start an action (``POST .../Actions``); see :meth:`send_message`."""
        path = encode_path("/v2/Conversations/{id}/Actions", id=conversation_id)
        response = await self._http.request(
            self._product, "POST", path, json=request.to_wire(), retry="unsent_only"
        )
        if response.status_code != 202:
            logger.warning(
                "Actions API answered %d instead of 202 for conversation %s",
                response.status_code,
                conversation_id,
            )
        return parse_model(ActionResponse, response)

    async def send_message(
        self, conversation_id: str, request: SendMessageActionRequest
    ) -> ActionResponse:
        """Send a reply through the Actions API (202 Accepted).

        The API has no idempotency key, so the request is retried only when it surely did not
        reach Twilio. After an ambiguous failure (e.g. a read timeout once sent) it raises
        :class:`~tac.context.errors.TwilioTransportError` with ``request_sent=True``: a reply
        is never sent twice.
        """
        return await self.create_action(conversation_id, request)
