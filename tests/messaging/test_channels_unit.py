"""Messaging channels without a network: construction, settings and event pre-checks."""

from __future__ import annotations

from typing import Any

import pytest

from tac import TAC, TACConfig
from tac.channels import (
    ChatChannel,
    ChatChannelConfig,
    MessagingChannelConfig,
    RCSChannel,
    RCSChannelConfig,
    SMSChannel,
    SMSChannelConfig,
    WhatsAppChannel,
    WhatsAppChannelConfig,
)
from tac.core.errors import TACConfigError
from tac.models.conversation import WebhookEvent
from tac.models.outbound import (
    InitiateChatConversationOptions,
    InitiateConversationResult,
    InitiateMessagingConversationOptions,
)
from tac.models.session import ConversationSession

pytestmark = pytest.mark.unit

CONFIGURATION = "conv_configuration_0ddddddddddddddddddddddddd"


def _tac(**overrides: Any) -> TAC:
    values: dict[str, Any] = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": "token",
        "api_key": "SK" + "1" * 32,
        "api_secret": "secret",
        "phone_number": "+15005550006",
        "conversation_configuration_id": CONFIGURATION,
        "whatsapp_number": "whatsapp:+15005550007",
        "rcs_sender_id": "rcs:acme_agent",
        "api_base_url": "http://twilio.test",
    }
    values.update(overrides)
    return TAC(TACConfig(**values))


def _communication(author: str, channel: str = "SMS", text: str | None = "hi") -> WebhookEvent:
    content: dict[str, Any] = {"type": "TEXT"}
    if text is not None:
        content["text"] = text
    return WebhookEvent.parse(
        {
            "eventType": "COMMUNICATION_CREATED",
            "data": {
                "id": "comms_communication_1",
                "conversationId": "conv_conversation_1",
                "author": {"address": author, "channel": channel},
                "content": content,
            },
        }
    )


@pytest.mark.parametrize("cls", [SMSChannel, WhatsAppChannel, RCSChannel, ChatChannel])
def test_needs_conversation_orchestrator(cls: type[SMSChannel]) -> None:
    tac = _tac(conversation_configuration_id=None)
    with pytest.raises(ValueError, match="TWILIO_CONVERSATION_CONFIGURATION_ID"):
        cls(tac)


def test_whatsapp_needs_its_number() -> None:
    with pytest.raises(TACConfigError, match="TWILIO_WHATSAPP_NUMBER"):
        WhatsAppChannel(_tac(whatsapp_number=None))


def test_rcs_needs_its_sender() -> None:
    with pytest.raises(TACConfigError, match="TWILIO_RCS_SENDER_ID"):
        RCSChannel(_tac(rcs_sender_id=None))


def test_agent_addresses() -> None:
    tac = _tac(whatsapp_number="+15005550007")
    assert SMSChannel(tac).agent_address == "+15005550006"
    assert WhatsAppChannel(tac).agent_address == "whatsapp:+15005550007"
    assert RCSChannel(tac).agent_address == "rcs:acme_agent"
    assert ChatChannel(tac).agent_address == "ai-assistant"
    chat = ChatChannel(tac, ChatChannelConfig(agent_address="support-bot"))
    assert chat.agent_address == "support-bot"
    assert chat.get_agent_address("conv_x").to_wire() == {
        "channel": "CHAT",
        "address": "support-bot",
    }


def test_config_from_dict_none_and_model() -> None:
    tac = _tac()
    assert SMSChannel(tac).memory_mode == "never"
    assert SMSChannel(tac, {"memory_mode": "always"}).memory_mode == "always"
    assert SMSChannel(tac, SMSChannelConfig(memory_mode="once")).memory_mode == "once"
    assert RCSChannel(tac, RCSChannelConfig(memory_mode="once")).memory_mode == "once"
    with pytest.warns(DeprecationWarning, match="dedup_capacity has no effect"):
        channel = WhatsAppChannel(tac, WhatsAppChannelConfig(dedup_capacity=5))
    assert channel.dedup_capacity == 5
    assert MessagingChannelConfig().dedup_capacity == 10000


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"SMSChannelConfig\.memory_mode"):
        SMSChannel(_tac(), {"memory_mode": "sometimes"})
    with pytest.raises(ValueError, match=r"dedup_capacity"):
        SMSChannel(_tac(), {"dedup_capacity": 0})
    with pytest.raises(ValueError, match=r"memroy_mode"):
        SMSChannel(_tac(), {"memroy_mode": "always"})
    with pytest.raises(TypeError, match="SMSChannelConfig"):
        SMSChannel(_tac(), config=42)  # type: ignore[arg-type]


def test_own_address_ignores_prefix_and_case() -> None:
    tac = _tac()
    whatsapp = WhatsAppChannel(tac)
    assert whatsapp.is_default_agent_address("whatsapp:+15005550007")
    assert whatsapp.is_default_agent_address("+15005550007")
    assert not whatsapp.is_default_agent_address("whatsapp:+15005550008")
    assert not whatsapp.is_default_agent_address(None)
    assert ChatChannel(tac).is_default_agent_address("AI-Assistant")


def test_accepts_drops_own_and_empty_messages_before_any_work() -> None:
    sms = SMSChannel(_tac())
    assert sms.accepts(_communication("+14155550100"))
    assert not sms.accepts(_communication("+15005550006"))
    assert not sms.accepts(_communication("+14155550100", text="   "))
    assert not sms.accepts(_communication("+14155550100", text=None))
    updated = WebhookEvent.parse(
        {"eventType": "CONVERSATION_UPDATED", "data": {"id": "conv_1", "status": "CLOSED"}}
    )
    assert sms.accepts(updated)
    added = WebhookEvent.parse(
        {"eventType": "PARTICIPANT_ADDED", "data": {"id": "p", "addresses": []}}
    )
    assert not sms.accepts(added)


async def test_own_message_never_reaches_the_callback() -> None:
    tac = _tac()
    seen: list[str] = []
    tac.on_message_ready(lambda message, session, memory: seen.append(message))
    sms = SMSChannel(tac)
    await sms.process_webhook(_communication("+15005550006").model_dump(by_alias=True))
    await sms.process_webhook(_communication("+14155550100", channel="WHATSAPP"))
    await sms.process_webhook(_communication("+14155550100", text=""))
    assert seen == []
    await tac.aclose()


async def test_send_response_checks_its_input() -> None:
    tac = _tac()
    sms = SMSChannel(tac)
    with pytest.raises(TypeError, match="needs a str"):
        await sms.send_response("conv_1", 42)
    with pytest.raises(RuntimeError, match="no SMS session for conversation conv_1"):
        await sms.send_response("conv_1", "hello")
    await tac.aclose()


def test_outbound_options() -> None:
    options = InitiateMessagingConversationOptions(to="+14155550100", message="Hi")
    assert options.metadata is None
    with pytest.raises(ValueError, match="message"):
        InitiateMessagingConversationOptions(to="+14155550100", message="")
    with pytest.raises(ValueError, match="channel_id"):
        InitiateChatConversationOptions(to="visitor", message="Hi")  # type: ignore[call-arg]
    session = ConversationSession(conversation_id="conv_1", channel="sms")
    result = InitiateConversationResult(conversation_id="conv_1", session=session)
    assert result.session.channel == "sms"


async def test_outbound_options_are_validated_before_any_request() -> None:
    tac = _tac()
    chat = ChatChannel(tac)
    with pytest.raises(ValueError, match=r"InitiateChatConversationOptions\.channel_id"):
        await chat.initiate_outbound_conversation({"to": "visitor", "message": "Hi"})
    with pytest.raises(TypeError, match="options must be"):
        await chat.initiate_outbound_conversation(42)  # type: ignore[arg-type]
    await tac.aclose()


async def test_agent_message_known_by_participant_id_alone_is_ignored() -> None:
    from tac.models.session import AuthorInfo

    tac = _tac()
    seen: list[str] = []
    tac.on_message_ready(lambda message, session, memory: seen.append(message))
    sms = SMSChannel(tac)
    session = ConversationSession(
        conversation_id="conv_conversation_1",
        channel="sms",
        author_info=AuthorInfo(address="+14155550100", participant_id="p_customer"),
        ai_agent_info=AuthorInfo(address="+15005550006", participant_id="p_agent"),
    )
    await tac.start_session(session)
    event = WebhookEvent.parse(
        {
            "eventType": "COMMUNICATION_CREATED",
            "data": {
                "id": "comms_communication_2",
                "conversationId": "conv_conversation_1",
                "author": {"address": "ai-relay-7", "channel": "SMS", "participantId": "p_agent"},
                "content": {"type": "TEXT", "text": "sent by the agent elsewhere"},
            },
        }
    )
    assert sms.accepts(event)
    await sms.process_webhook(event)
    assert seen == []
    await tac.aclose()


async def test_inactive_and_closed_events() -> None:
    tac = _tac()
    ended: list[str] = []
    tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
    sms = SMSChannel(tac)
    await tac.start_session(ConversationSession(conversation_id="conv_9", channel="sms"))
    await tac.session_store.set_cached_memory("conv_9", {"kind": "cached"}, 60)

    def updated(status: str, configuration: str = CONFIGURATION) -> WebhookEvent:
        return WebhookEvent.parse(
            {
                "eventType": "CONVERSATION_UPDATED",
                "data": {"id": "conv_9", "status": status, "configurationId": configuration},
            }
        )

    await sms.process_webhook(updated("INACTIVE"))
    assert await tac.session_store.get_cached_memory("conv_9") is None
    await sms.process_webhook(updated("CLOSED", "conv_configuration_other"))
    assert ended == []
    await sms.process_webhook(updated("CLOSED"))
    await sms.process_webhook(updated("CLOSED"))
    assert ended == ["conv_9"]
    assert await tac.session_store.session_count() == 0
    await tac.aclose()
