"""The official ``twilio`` library's ``conversations.v2`` client works against the sandbox.

The client is synchronous, so each call runs in a thread while the sandbox serves on the loop.
"""

import asyncio
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.conversations.v2.configuration import ConfigurationList
from twilio.rest.conversations.v2.conversation import ConversationList
from twilio.rest.conversations.v2.participant import ParticipantList

from tac.sandbox import Sandbox, twilio_http_client

pytestmark = pytest.mark.integration


def _client(sb: Sandbox) -> Client:
    ident = sb.identity
    return Client(
        ident.api_key,
        ident.api_secret,
        ident.account_sid,
        http_client=twilio_http_client(sb.url),
    )


async def _run(call: Any) -> Any:
    return await asyncio.to_thread(call)


async def test_default_configuration_reads_through_twilio(sandbox: Sandbox) -> None:
    v2 = _client(sandbox).conversations.v2
    ident = sandbox.identity
    config = await _run(v2.configurations(ident.conversation_configuration_id).fetch)
    assert config.id == ident.conversation_configuration_id
    assert config.memory_store_id == ident.memory_store_id
    assert config.status_callbacks == [{"url": "http://127.0.0.1:8000/webhook", "method": "POST"}]
    assert config.channel_settings["SMS"]["statusTimeouts"] == {"inactive": 5, "closed": 30}
    listed = await _run(v2.configurations.list)
    assert [c.id for c in listed] == [ident.conversation_configuration_id]


async def test_configuration_create_update_and_operation(sandbox: Sandbox) -> None:
    v2 = _client(sandbox).conversations.v2
    request = ConfigurationList.CreateConfigurationRequest(
        {
            "displayName": "Support",
            "memoryStoreId": "mem_store_00000000000000000000000000",
            "statusCallbacks": [{"url": "https://agent.example.com/webhook", "method": "POST"}],
            "channelSettings": {"SMS": {"statusTimeouts": {"inactive": 2, "closed": 4}}},
        }
    )
    response = await _run(
        lambda: v2.configurations.create_with_http_info(create_configuration_request=request)
    )
    assert response.status_code == 202
    created_id = response.data.related["configurationId"]
    operation_id = {k.lower(): v for k, v in response.headers.items()}["operation-id"]
    operation = await _run(v2.operations(operation_id).fetch)
    assert operation.status == "COMPLETED"
    assert operation.related == {"configurationId": created_id}

    fetched = await _run(v2.configurations(created_id).fetch)
    assert fetched.display_name == "Support"
    assert fetched.channel_settings["SMS"]["statusTimeouts"] == {"inactive": 2, "closed": 4}
    assert fetched.version == 1

    update = ConfigurationList.UpdateConfigurationRequest(
        {"displayName": "Support v2", "conversationGroupingType": "GROUP_BY_PROFILE"}
    )
    await _run(lambda: v2.configurations(created_id).update(update_configuration_request=update))
    updated = await _run(v2.configurations(created_id).fetch)
    assert updated.display_name == "Support v2"
    assert updated.conversation_grouping_type == "GROUP_BY_PROFILE"
    assert updated.status_callbacks == []  # PUT replaces the whole configuration
    assert updated.version == 2


async def test_conversations_and_participants_through_twilio(sandbox: Sandbox) -> None:
    v2 = _client(sandbox).conversations.v2
    config_id = sandbox.identity.conversation_configuration_id
    create = ConversationList.CreateConversationWithConfigRequest(
        {
            "configurationId": config_id,
            "name": "order help",
            "participants": [
                {"type": "CUSTOMER", "addresses": [{"channel": "SMS", "address": "+14155550123"}]}
            ],
            "metadata": {"orderId": "4521"},
        }
    )
    conversation = await _run(
        lambda: v2.conversations.create(create_conversation_with_config_request=create)
    )
    assert conversation.status == "ACTIVE"
    assert conversation.configuration_id == config_id
    assert conversation.id.startswith("conv_conversation_")

    fetched = await _run(v2.conversations(conversation.id).fetch)
    assert fetched.name == "order help"
    assert fetched.metadata == {"orderId": "4521"}

    participants = v2.participants(conversation.id)
    agent = await _run(
        lambda: participants.create(
            create_participant_in_conversation_request=ParticipantList.CreateParticipantInConversationRequest(
                {"type": "AI_AGENT", "addresses": [{"channel": "SMS", "address": "+15005550006"}]}
            )
        )
    )
    assert agent.type == "AI_AGENT"
    listed = await _run(participants.list)
    assert [p.type for p in listed] == ["CUSTOMER", "AI_AGENT"]

    replaced = await _run(
        lambda: v2.participants(conversation.id, agent.id).update(
            update_participant_in_conversation_request=ParticipantList.UpdateParticipantInConversationRequest(
                {"name": "Ava", "addresses": [{"channel": "SMS", "address": "+15005550006"}]}
            )
        )
    )
    assert replaced.name == "Ava"
    assert replaced.type == "UNKNOWN"  # full replacement: the omitted type is cleared

    await _run(
        lambda: v2.conversations(conversation.id).update(
            update_conversation_by_id_request=ConversationList.UpdateConversationByIdRequest(
                {"status": "INACTIVE"}
            )
        )
    )
    inactive = await _run(lambda: v2.conversations.list(status=["INACTIVE"]))
    assert [c.id for c in inactive] == [conversation.id]
    assert await _run(lambda: v2.conversations.list(status=["ACTIVE"])) == []

    await _run(
        lambda: v2.conversations(conversation.id).patch(
            patch_conversation_by_id_request=ConversationList.PatchConversationByIdRequest(
                {"configuration": {"statusCallbacks": []}, "metadata": {"channel": "sms"}}
            )
        )
    )
    patched = await _run(v2.conversations(conversation.id).fetch)
    assert patched.status == "INACTIVE"  # omitted fields leave the conversation as it was
    assert patched.name == "order help"
    # The complete configuration: the Configuration's settings, this override on top.
    assert patched.configuration["statusCallbacks"] == []
    assert patched.configuration["memoryStoreId"] == sandbox.identity.memory_store_id
    assert "VOICE" in patched.configuration["channelSettings"]
    assert patched.metadata == {"orderId": "4521", "channel": "sms"}  # merged


async def test_duplicate_conversation_is_409_with_conflicting_id(sandbox: Sandbox) -> None:
    v2 = _client(sandbox).conversations.v2
    body = {
        "configurationId": sandbox.identity.conversation_configuration_id,
        "participants": [
            {"type": "CUSTOMER", "addresses": [{"channel": "SMS", "address": "+14155550123"}]},
            {"type": "AI_AGENT", "addresses": [{"channel": "SMS", "address": "+15005550006"}]},
        ],
    }
    first = await _run(
        lambda: v2.conversations.create(
            create_conversation_with_config_request=ConversationList.CreateConversationWithConfigRequest(
                body
            )
        )
    )
    with pytest.raises(TwilioRestException) as caught:
        await _run(
            lambda: v2.conversations.create(
                create_conversation_with_config_request=ConversationList.CreateConversationWithConfigRequest(
                    body
                )
            )
        )
    assert caught.value.status == 409
    assert caught.value.code == 20409
    async with httpx.AsyncClient(auth=(sandbox.identity.api_key, sandbox.identity.api_secret)) as h:
        response = await h.post(f"{sandbox.url}/conversations/v2/Conversations", json=body)
    assert response.status_code == 409
    assert response.headers["X-Conflicting-Resource-Id"] == first.id


async def test_list_pages_with_tokens_through_twilio(sandbox: Sandbox) -> None:
    v2 = _client(sandbox).conversations.v2
    config_id = sandbox.identity.conversation_configuration_id
    for number in range(5):
        request = ConversationList.CreateConversationWithConfigRequest(
            {"configurationId": config_id, "name": f"c{number}"}
        )
        await _run(
            lambda request=request: v2.conversations.create(
                create_conversation_with_config_request=request
            )
        )
    names = await _run(lambda: [c.name for c in v2.conversations.stream(page_size=2)])
    assert names == ["c0", "c1", "c2", "c3", "c4"]


async def test_unknown_conversation_is_twilio_404(sandbox: Sandbox) -> None:
    v2 = _client(sandbox).conversations.v2
    with pytest.raises(TwilioRestException) as caught:
        await _run(v2.conversations("conv_conversation_00000000000000000000000000").fetch)
    assert caught.value.status == 404
    assert caught.value.code == 20404
