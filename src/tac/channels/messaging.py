"""Messaging through Conversation Orchestrator: the part SMS, WhatsApp, RCS and Chat share.

One inbound message (``COMMUNICATION_CREATED``) becomes one turn:

1. the agent's own messages are recognised from the event alone (its address, or the agent
   participant id the session already knows) and never reach the callback;
2. the first turn of a conversation lists its participants once and reconciles the ones that
   arrived ``UNKNOWN`` (the agent becomes ``AI_AGENT``, the customer ``CUSTOMER`` with a
   profile); later turns make no Twilio request before the callback (``memory_mode="never"``);
3. memory per ``memory_mode``, then ``on_message_ready(message, session, memory)``;
4. a returned string goes back through the Actions API (``SEND_MESSAGE``) on the same channel.

``CONVERSATION_UPDATED``: ``INACTIVE`` forgets the ``once`` memory cache, ``CLOSED`` ends the
session (``on_conversation_ended`` fires once).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tac._compat.aliases import warn_inert
from tac.channels.base import AGENT_TYPES, BaseChannel
from tac.context.errors import ConflictError, outcome_uncertain
from tac.core.errors import TACConfigError
from tac.core.inbound import InboundDelivery
from tac.core.logging import ContextLogger, get_logger, mask_address
from tac.core.tac import TAC
from tac.core.turns import run_turn
from tac.models._base import first_error
from tac.models.address import bare_address
from tac.models.conversation import (
    ActionChannelSettings,
    ActionParticipantRef,
    ActionTextContent,
    Communication,
    ConversationRequest,
    Participant,
    ParticipantAddress,
    ParticipantRequest,
    SendMessageActionPayload,
    SendMessageActionRequest,
    WebhookEvent,
)
from tac.models.delivery import FAILED_DELIVERY_STATUSES, DeliveryStatus
from tac.models.memory import MemoryMode
from tac.models.outbound import (
    InitiateChatConversationOptions,
    InitiateConversationResult,
    InitiateMessagingConversationOptions,
)
from tac.models.session import AuthorInfo, ConversationSession
from tac.observability import _hooks as _obs

__all__ = ["MessagingChannel", "MessagingChannelConfig"]


class MessagingChannelConfig(BaseModel):
    """Settings every messaging channel shares.

    Attributes:
        memory_mode: ``"always"`` (every turn), ``"once"`` (first turn, again after INACTIVE)
            or ``"never"`` (the callback gets ``memory=None``).
        dedup_capacity: accepted for compatibility with the reference SDK. Redelivered webhooks
            are dropped by the server's idempotency claims in the session store instead, which
            hold every key for 24 h and work across instances.
    """

    model_config = ConfigDict(extra="forbid")

    dedup_capacity: int = Field(default=10000, gt=0)
    memory_mode: MemoryMode = "never"

    @field_validator("dedup_capacity")
    @classmethod
    def _dedup_capacity_is_inert(cls, value: int) -> int:
        _inert_dedup()
        return value


def _inert_dedup() -> None:
    warn_inert("dedup_capacity", "the session store's idempotency claims drop redeliveries")


_C = TypeVar("_C", bound=MessagingChannelConfig)


class _Dropped(Exception):
    """An inbound message that cannot be handled (participants that do not fit)."""


class MessagingChannel(BaseChannel):
    """Base of the Conversation Orchestrator messaging channels (SMS, WhatsApp, RCS, Chat).

    Subclasses name the channel and the agent's address on it. Constructing one needs
    Conversation Orchestrator (``TWILIO_CONVERSATION_CONFIGURATION_ID``).
    """

    reconcile_customer_type: ClassVar[bool] = True

    def __init__(
        self, tac: TAC, dedup_capacity: int = 10000, memory_mode: MemoryMode = "never"
    ) -> None:
        if not isinstance(dedup_capacity, int) or dedup_capacity <= 0:
            raise ValueError(f"dedup_capacity must be a positive int, got {dedup_capacity!r}")
        if dedup_capacity != 10000:
            _inert_dedup()
        super().__init__(tac, memory_mode)
        client = tac.conversation_orchestrator_client
        if client is None:
            raise TACConfigError(
                "TWILIO_CONVERSATION_CONFIGURATION_ID",
                f"{type(self).__name__} needs Conversation Orchestrator: set it to your "
                "conversation configuration id (messaging is not available in "
                "ConversationRelay-only mode)",
            )
        self.dedup_capacity = dedup_capacity
        self.client = client
        self.logger: ContextLogger = get_logger(f"channels.{self.channel.value}")
        self._agent_address = self._resolve_agent_address()
        self._agent_bare = bare_address(self._agent_address).lower()
        self._wire = self.channel.wire
        self._name = self.channel.value

    @staticmethod
    def _coerce_config(
        config_class: type[_C], config: MessagingChannelConfig | Mapping[str, Any] | None
    ) -> _C:
        if config is None:
            return config_class()
        if isinstance(config, config_class):
            return config
        if isinstance(config, MessagingChannelConfig):
            return config_class.model_validate(config.model_dump())
        if isinstance(config, Mapping):
            try:
                return config_class.model_validate(dict(config))
            except ValidationError as exc:
                field, message = first_error(exc, "config")
                raise ValueError(f"{config_class.__name__}.{field}: {message}") from None
        raise TypeError(
            f"config must be a {config_class.__name__}, a dict or None, got {type(config).__name__}"
        )

    # -- the agent's address ---------------------------------------------------------------

    @abstractmethod
    def _resolve_agent_address(self) -> str:
        """The agent's address on this channel (raises a clear error when not configured)."""

    @property
    def agent_address(self) -> str:
        """The agent's address on this channel (the sender of its messages)."""
        return self._agent_address

    def is_default_agent_address(self, address: str | None) -> bool:
        """Whether ``address`` is the agent's own (channel prefixes and case ignored)."""
        if not address:
            return False
        return address == self._agent_address or bare_address(address).lower() == self._agent_bare

    def get_agent_address(self, conversation_id: str | None = None) -> ParticipantAddress:
        """The agent's address on this channel as a participant address."""
        return ParticipantAddress(channel=self._wire, address=self._agent_address)

    # -- webhooks --------------------------------------------------------------------------

    def accepts(self, event: WebhookEvent) -> bool:
        """Cheap pre-check before the server claims an event: drop the agent's own messages."""
        if event.event_type == "COMMUNICATION_CREATED":
            author = event.data.get("author")
            if isinstance(author, dict) and self.is_default_agent_address(author.get("address")):
                return False
            content = event.data.get("content")
            if isinstance(content, dict):
                text = content.get("text")
                if not isinstance(text, str) or not text.strip():
                    return False
            return True
        if event.event_type == "COMMUNICATION_UPDATED":
            return self._delivery_failed(event.data)
        return event.event_type == "CONVERSATION_UPDATED"

    def _delivery_failed(self, data: Mapping[str, Any]) -> bool:
        """Whether a ``COMMUNICATION_UPDATED`` reports a failed delivery (it then takes the
        claimed path to ``on_delivery_status``); other statuses are only counted, unclaimed."""
        failed = False
        recipients = data.get("recipients")
        for recipient in recipients if isinstance(recipients, list) else ():
            status = recipient.get("deliveryStatus") if isinstance(recipient, dict) else None
            if not isinstance(status, str):
                continue
            if status.upper() in FAILED_DELIVERY_STATUSES:
                failed = True
            else:
                _obs.observer.delivery_status(self._name, status)
        return failed

    async def process_webhook(
        self, webhook_data: WebhookEvent | dict[str, Any], idempotency_token: str | None = None
    ) -> None:
        """Handle one Orchestrator event (the server has already dropped redeliveries)."""
        event = (
            webhook_data
            if isinstance(webhook_data, WebhookEvent)
            else WebhookEvent.parse(webhook_data)
        )
        await self.handle_event(event, None)

    async def handle_event(self, event: WebhookEvent, delivery: InboundDelivery | None) -> None:
        if event.event_type == "COMMUNICATION_CREATED":
            await self._on_communication(event.communication(), delivery)
        elif event.event_type == "CONVERSATION_UPDATED":
            await self._on_conversation_updated(event)
        elif event.event_type == "COMMUNICATION_UPDATED":
            await self._on_delivery_status(event.communication())

    async def _on_delivery_status(self, communication: Communication) -> None:
        """Failed deliveries → ``on_delivery_status(session, status)`` (once per recipient)."""
        conversation_id = communication.conversation_id
        if not conversation_id:
            return
        failed = [
            recipient
            for recipient in communication.recipients
            if (recipient.delivery_status or "").upper() in FAILED_DELIVERY_STATUSES
        ]
        if not failed:
            return
        session = await self.tac.get_session(conversation_id)
        if session is None:  # ended meanwhile: the callback still hears of it
            session = ConversationSession(conversation_id=conversation_id, channel=self.channel)
        for recipient in failed:
            status = recipient.delivery_status or ""
            _obs.observer.delivery_status(self._name, status)
            self.logger.warning(
                "message not delivered: %s",
                status,
                conversation_id=conversation_id,
                address=mask_address(recipient.address),
            )
            await self.tac.trigger_delivery_status(
                session,
                DeliveryStatus(
                    status=status,
                    conversation_id=conversation_id,
                    communication_id=communication.id,
                    channel=self.channel,
                    address=recipient.address,
                    participant_id=recipient.participant_id,
                    text=communication.content.text,
                    communication=communication,
                ),
            )

    async def _on_conversation_updated(self, event: WebhookEvent) -> None:
        conversation = event.conversation()
        expected = self.tac.config.conversation_configuration_id
        if conversation.configuration_id and conversation.configuration_id != expected:
            return
        status = (conversation.status or "").upper()
        if status == "INACTIVE":
            await self.tac.invalidate_memory_cache(conversation.id)
        elif status == "CLOSED":
            await self.tac.close_conversation(conversation.id)

    async def _on_communication(
        self, communication: Communication, delivery: InboundDelivery | None = None
    ) -> None:
        author = communication.author
        if (author.channel or "").upper() != self._wire:
            return
        text = communication.content.text
        if text is None or not text.strip():
            return
        if self.is_default_agent_address(author.address):
            return
        conversation_id = communication.conversation_id
        if not conversation_id:
            self.logger.warning("COMMUNICATION_CREATED without conversationId ignored")
            return
        _obs.bind_log_context(conversation_id, self._name)
        if delivery is not None and delivery.session_loaded:
            session = delivery.session  # read with the claim, in the same round trip
        else:
            session = await self.tac.get_session(conversation_id)
        first = session is None
        if session is None:
            try:
                session = await self._first_turn(conversation_id, communication)
            except _Dropped as exc:
                await self.tac.trigger_error(
                    exc,
                    {
                        "conversation_id": conversation_id,
                        "channel": self._name,
                        "dropped_inbound": True,
                    },
                )
                return
            if session is None:
                return  # the agent's own message
        elif not await self._from_customer(session, communication):
            return
        if communication.channel_id:
            session.metadata["channel_id"] = communication.channel_id
        await self._turn(session, text, delivery)
        if first:
            await self.tac.end_if_closed(conversation_id)

    async def _from_customer(
        self, session: ConversationSession, communication: Communication
    ) -> bool:
        """Whether a later turn's author is the customer (not the agent), without a request
        when the author's participant id is one the session knows."""
        participant_id = communication.author.participant_id
        agent = session.ai_agent_info
        if participant_id is None:
            return True
        if agent is not None and participant_id == agent.participant_id:
            return False
        customer = session.author_info
        if customer is not None and participant_id == customer.participant_id:
            return True
        participants = await self.client.list_participants(session.conversation_id)
        author = next((p for p in participants if p.id == participant_id), None)
        return author is None or (author.type or "").upper() not in AGENT_TYPES

    async def _turn(
        self, session: ConversationSession, text: str, delivery: InboundDelivery | None = None
    ) -> None:
        """One turn through the engine; the reply goes back through the Actions API."""
        await run_turn(
            self.tac,
            session,
            text,
            mode=self.memory_mode,
            sink=_ActionsSink(self, session),
            delivery=delivery,
            context={"conversation_id": session.conversation_id, "channel": self._name},
        )

    # -- the first turn: participants --------------------------------------------------------

    async def _first_turn(
        self, conversation_id: str, communication: Communication
    ) -> ConversationSession | None:
        """List participants once, reconcile them and create the session (``None``: own)."""
        author = communication.author
        participants = await self.client.list_participants(conversation_id)
        author_participant = self._find_author(participants, communication)
        if author_participant is not None:
            kind = (author_participant.type or "").upper()
            if kind in AGENT_TYPES:
                return None
        agent = await self._reconcile_agent(conversation_id, participants)
        customer = await self._reconcile_customer(conversation_id, author_participant)
        session = ConversationSession(
            conversation_id=conversation_id,
            channel=self.channel,
            profile_id=customer.profile_id,
            author_info=AuthorInfo(address=author.address, participant_id=customer.id),
            ai_agent_info=AuthorInfo(address=self._agent_address, participant_id=agent.id),
            metadata={"direction": "inbound"},
        )
        stored, _created = await self.tac.start_session(session)
        return stored

    def _find_author(
        self, participants: list[Participant], communication: Communication
    ) -> Participant | None:
        author = communication.author
        if author.participant_id:
            for participant in participants:
                if participant.id == author.participant_id:
                    return participant
        return self._owner(participants, author.address)

    def _owner(self, participants: list[Participant], address: str | None) -> Participant | None:
        if not address:
            return None
        wanted = bare_address(address).lower()
        for participant in participants:
            for item in participant.addresses:
                if (
                    item.channel.upper() == self._wire
                    and bare_address(item.address).lower() == wanted
                ):
                    return participant
        return None

    async def _reconcile_agent(
        self, conversation_id: str, participants: list[Participant]
    ) -> Participant:
        agent = self._owner(participants, self._agent_address)
        address = self.get_agent_address()
        if agent is None:
            request = ParticipantRequest(addresses=[address], type="AI_AGENT")
            try:
                return await self.client.add_participant(conversation_id, request)
            except ConflictError:
                refreshed = await self.client.list_participants(conversation_id)
                agent = self._owner(refreshed, self._agent_address)
                if agent is None:
                    raise
        kind = (agent.type or "UNKNOWN").upper()
        if kind in AGENT_TYPES:
            return agent
        if kind != "UNKNOWN":
            raise _Dropped(
                f"the agent's address {self._agent_address} belongs to a {kind} participant "
                f"in conversation {conversation_id}; message dropped"
            )
        return await self.client.update_participant(
            conversation_id,
            agent.id,
            ParticipantRequest(
                addresses=agent.addresses or [address],
                type="AI_AGENT",
                name=agent.name,
                profile_id=agent.profile_id,
            ),
        )

    async def _reconcile_customer(
        self, conversation_id: str, customer: Participant | None
    ) -> Participant:
        if customer is None:
            raise _Dropped(
                f"the author of the message is not a participant of conversation "
                f"{conversation_id}; message dropped"
            )
        kind = (customer.type or "UNKNOWN").upper()
        if kind == "CUSTOMER" or not self.reconcile_customer_type:
            return customer
        if kind != "UNKNOWN":
            raise _Dropped(
                f"the author is a {kind} participant of conversation {conversation_id}; "
                "message dropped"
            )
        profile_id = customer.profile_id or await self._resolve_profile(conversation_id, customer)
        return await self.client.update_participant(
            conversation_id,
            customer.id,
            ParticipantRequest(
                addresses=customer.addresses,
                type="CUSTOMER",
                name=customer.name,
                profile_id=profile_id,
            ),
        )

    async def _resolve_profile(self, conversation_id: str, customer: Participant) -> str | None:
        """Find (or create, for a phone number) the Memory profile of a new customer."""
        address = next(
            (a.address for a in customer.addresses if a.channel.upper() == self._wire), None
        )
        try:
            return await self.tac.find_profile(self.channel, address, create=True)
        except Exception as exc:
            self.logger.warning(
                "customer profile not resolved: %s",
                exc,
                conversation_id=conversation_id,
                address=mask_address(address),
            )
            return None

    # -- replies -------------------------------------------------------------------------------

    async def send_response(
        self, conversation_id: str, response: Any, role: str | None = None
    ) -> None:
        """Send ``response`` (a str) to the customer of ``conversation_id`` on this channel.

        Raises:
            TypeError: ``response`` is not a str.
            RuntimeError: no session for this conversation on this channel.
            TwilioAPIError, TwilioTransportError: the Actions API failed. The request is retried
                only when it surely did not reach Twilio; :func:`tac.context.outcome_uncertain`
                tells whether the message may have gone out anyway. It is never sent twice.
        """
        if not isinstance(response, str):
            raise TypeError(
                f"{type(self).__name__}.send_response needs a str, got {type(response).__name__}"
            )
        session = await self.tac.get_session(conversation_id)
        if session is None or session.channel != self.channel:
            raise RuntimeError(
                f"no {self._wire} session for conversation {conversation_id}: it has not "
                "started on this channel, or it has ended"
            )
        await self._send(session, response)

    async def _send(self, session: ConversationSession, text: str) -> None:
        agent = session.ai_agent_info
        customer = session.author_info
        if agent is None or agent.participant_id is None:
            raise RuntimeError(
                f"conversation {session.conversation_id} has no agent participant to send from"
            )
        if customer is None or customer.participant_id is None:
            raise RuntimeError(
                f"conversation {session.conversation_id} has no customer participant to send to"
            )
        channel_id = session.metadata.get("channel_id")
        settings = ActionChannelSettings(channel_id=channel_id) if channel_id else None
        request = SendMessageActionRequest(
            payload=SendMessageActionPayload(
                from_=ActionParticipantRef(participant_id=agent.participant_id, channel=self._wire),
                to=[
                    ActionParticipantRef(participant_id=customer.participant_id, channel=self._wire)
                ],
                content=ActionTextContent(text=text),
                channel_settings=settings,
            )
        )
        await self.client.send_message(session.conversation_id, request)

    # -- outbound ------------------------------------------------------------------------------

    async def initiate_outbound_conversation(
        self, options: InitiateMessagingConversationOptions | Mapping[str, Any]
    ) -> InitiateConversationResult:
        """Text a customer first: create (or reuse) the conversation, then send ``message``.

        On failure the session is removed and a conversation created here is closed, unless
        the message may have gone out (see :func:`tac.context.outcome_uncertain`); the error
        is raised.
        """
        opts = self._outbound_options(options)
        customer_address = ParticipantAddress(
            channel=self._wire, address=opts.to, channel_id=self._outbound_channel_id(opts)
        )
        request = ConversationRequest(
            configuration_id=self.client.configuration_id or "",
            participants=[
                ParticipantRequest(type="CUSTOMER", addresses=[customer_address]),
                ParticipantRequest(type="AI_AGENT", addresses=[self.get_agent_address()]),
            ],
        )
        conversation_id, reused = await self.client.create_or_reuse_conversation(request)
        created_session = False
        try:
            participants = await self.client.list_participants(conversation_id)
            customer = self._owner(participants, opts.to)
            agent = self._owner(participants, self._agent_address)
            if customer is None or agent is None:
                missing = "customer" if customer is None else "agent"
                raise RuntimeError(
                    f"conversation {conversation_id} has no {missing} participant after creation"
                )
            metadata: dict[str, Any] = {**(opts.metadata or {}), "direction": "outbound"}
            channel_id = self._outbound_channel_id(opts)
            if channel_id:
                metadata["channel_id"] = channel_id
            session = ConversationSession(
                conversation_id=conversation_id,
                channel=self.channel,
                profile_id=customer.profile_id,
                author_info=AuthorInfo(address=opts.to, participant_id=customer.id),
                ai_agent_info=AuthorInfo(address=self._agent_address, participant_id=agent.id),
                metadata=metadata,
            )
            session, created_session = await self.tac.start_session(session)
            await self._send(session, opts.message)
        except Exception as exc:
            if not outcome_uncertain(exc):
                await self._undo_outbound(conversation_id, reused, created_session)
            raise
        return InitiateConversationResult(conversation_id=conversation_id, session=session)

    def _outbound_options(
        self, options: InitiateMessagingConversationOptions | Mapping[str, Any]
    ) -> InitiateMessagingConversationOptions:
        model = self._outbound_options_class()
        if isinstance(options, model):
            return options
        raw = options.model_dump() if isinstance(options, BaseModel) else options
        if not isinstance(raw, Mapping):
            raise TypeError(f"options must be a {model.__name__}, got {type(options).__name__}")
        try:
            return model.model_validate(dict(raw))
        except ValidationError as exc:
            field, message = first_error(exc, "options")
            raise ValueError(f"{model.__name__}.{field}: {message}") from None

    def _outbound_options_class(self) -> type[InitiateMessagingConversationOptions]:
        return InitiateMessagingConversationOptions

    def _outbound_channel_id(self, options: InitiateMessagingConversationOptions) -> str | None:
        if isinstance(options, InitiateChatConversationOptions):
            return options.channel_id
        return None

    async def _undo_outbound(self, conversation_id: str, reused: bool, created: bool) -> None:
        if created:
            await self.tac.discard_session(conversation_id)
        if reused:
            return
        try:
            await self.client.update_conversation(conversation_id, "CLOSED")
        except Exception as exc:
            self.logger.warning(
                "could not close conversation %s after a failed outbound message: %s",
                conversation_id,
                exc,
            )


class _ActionsSink:
    """Messaging replies: one message through the Actions API (``SEND_MESSAGE``)."""

    streams = False

    def __init__(self, channel: MessagingChannel, session: ConversationSession) -> None:
        self._channel = channel
        self._session = session

    async def deliver(self, reply: Any) -> None:
        await self._channel._send(self._session, reply)

    async def fail(self) -> None:
        return None

    def quiet(self, exc: BaseException) -> bool:
        return False
