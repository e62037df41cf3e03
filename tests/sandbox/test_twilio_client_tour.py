"""The official ``twilio`` client over the routes no other test drives through it: deletes,
single fetches and lists of every product, the SEND_MESSAGE action, Knowledge's control plane,
Studio's execution update and the Calls list. With the other ``twilio``-client tests of this
folder, every route the sandbox serves is called through the library's generated models,
except the Studio voice-handoff webhook, which Twilio's ConversationRelay (the sandbox's
phone) calls, not a REST client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest.conversations.v2.action import ActionList
from twilio.rest.conversations.v2.configuration import ConfigurationList
from twilio.rest.conversations.v2.conversation import ConversationList
from twilio.rest.knowledge.v2.knowledge import KnowledgeList
from twilio.rest.knowledge.v2.knowledge_basis import KnowledgeBasisList
from twilio.rest.memory.v1 import ProfileList
from twilio.rest.memory.v1.conversation_summary import ConversationSummaryList
from twilio.rest.memory.v1.observation import ObservationList
from twilio.rest.memory.v1.trait_group import TraitGroupList

from tac.sandbox import Sandbox

pytestmark = pytest.mark.integration

T = TypeVar("T")
WHEN = "2026-01-06T18:30:00Z"


async def _run(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def _missing(call: Callable[[], Any]) -> int:
    with pytest.raises(TwilioRestException) as raised:
        call()
    return int(raised.value.status)


async def test_orchestrator_routes(sandbox: Sandbox) -> None:
    v2 = sandbox.twilio_client().conversations.v2
    identity = sandbox.identity
    customer = {"channel": "SMS", "address": "+14155550120"}
    agent = {"channel": "SMS", "address": identity.phone_number}

    def scenario() -> dict[str, Any]:
        created_config = v2.configurations.create(
            create_configuration_request=ConfigurationList.CreateConfigurationRequest(
                {
                    "displayName": "tour",
                    "description": "a configuration to patch and delete",
                    "conversationGroupingType": "GROUP_BY_PARTICIPANT_ADDRESSES",
                    "memoryStoreId": identity.memory_store_id,
                }
            )
        )
        config_id = created_config.related["configurationId"]  # 202: an operation's result
        v2.configurations(config_id).patch(
            patch_configuration_request=ConfigurationList.PatchConfigurationRequest(
                {"description": "patched"}
            )
        )
        patched = v2.configurations(config_id).fetch()
        conversation = v2.conversations.create(
            create_conversation_with_config_request=ConversationList.CreateConversationWithConfigRequest(
                {
                    "configurationId": identity.conversation_configuration_id,
                    "participants": [
                        {"type": "CUSTOMER", "addresses": [customer]},
                        {"type": "AI_AGENT", "addresses": [agent]},
                    ],
                }
            )
        )
        participants = v2.participants(conversation.id).list()
        by_type = {p.type: p for p in participants}
        fetched_agent = v2.participants(conversation.id, by_type["AI_AGENT"].id).fetch()
        action = v2.actions(conversation.id).create(
            create_conversation_action_request=ActionList.CreateConversationActionRequest(
                {
                    "type": "SEND_MESSAGE",
                    "payload": {
                        "from": {"participantId": by_type["AI_AGENT"].id, "channel": "SMS"},
                        "to": [{"participantId": by_type["CUSTOMER"].id, "channel": "SMS"}],
                        "content": {"text": "Your order shipped."},
                    },
                }
            )
        )
        action_id = action.id or action.related["action"].split("/")[-1]
        fetched_action = v2.actions(conversation.id, action_id).fetch()
        communications = v2.communications(conversation.id).list()
        fetched_communication = v2.communications(conversation.id, communications[0].id).fetch()
        deleted = v2.conversations(conversation.id).delete()
        gone = _missing(v2.conversations(conversation.id).fetch)
        config_deleted = v2.configurations(config_id).delete()
        return {
            "patched": patched,
            "agent": fetched_agent,
            "action": fetched_action,
            "communications": communications,
            "communication": fetched_communication,
            "deleted": deleted,
            "gone": gone,
            "config_deleted": config_deleted,
        }

    seen = await _run(scenario)
    assert seen["patched"].description == "patched"
    assert seen["agent"].type == "AI_AGENT"
    assert seen["agent"].name == identity.phone_number  # Twilio fills the name: never null
    assert seen["action"].type == "action-send-message"  # the resource's type, not the request's
    (sent,) = seen["communications"]
    assert sent.content["text"] == "Your order shipped."
    assert seen["communication"].id == sent.id
    assert seen["communication"].author["participantId"]
    # Deletes are 202 operations: the model hands back their body.
    assert seen["deleted"]["related"] == {"conversationId": sent.conversation_id}
    assert seen["gone"] == 404
    assert seen["config_deleted"]


async def test_memory_routes(sandbox: Sandbox) -> None:
    memory = sandbox.twilio_client().memory.v1
    store = sandbox.identity.memory_store_id

    def scenario() -> dict[str, Any]:
        fetched_store = memory.stores(store).fetch()
        profile = (
            memory.profiles(store)
            .create(
                profile_data=ProfileList.ProfileData(
                    {"traits": {"Contact": {"phone": "+14155550121", "firstName": "Ada"}}}
                )
            )
            .id
        )
        profiles = memory.profiles(store).list()
        traits = memory.traits(store, profile).list()
        memory.observations(store, profile).create(
            create_observations_request=ObservationList.CreateObservationsRequest(
                {"observations": [{"content": "Likes tea", "source": "tour", "occurredAt": WHEN}]}
            )
        )
        (observation,) = memory.observations(store, profile).list()
        fetched_observation = memory.observations(store, profile, observation.id).fetch()
        memory.observations(store, profile, observation.id).delete()
        memory.conversation_summaries(store, profile).create(
            create_summaries_request=ConversationSummaryList.CreateSummariesRequest(
                {
                    "summaries": [
                        {
                            "content": "Asked for tea",
                            "conversationId": "conv_conversation_02",
                            "source": "tour",
                            "occurredAt": WHEN,
                        }
                    ]
                }
            )
        )
        (summary,) = memory.conversation_summaries(store, profile).list()
        fetched_summary = memory.conversation_summaries(store, profile, summary.id).fetch()
        memory.conversation_summaries(store, profile, summary.id).delete()
        memory.trait_groups(store).create(
            trait_group_request=TraitGroupList.TraitGroupRequest(
                {"displayName": "Tour", "traits": {"mood": {"dataType": "STRING"}}}
            )
        )
        group_deleted = memory.trait_groups(store, "Tour").delete()
        profile_deleted = memory.profiles(store, profile).delete()
        return {
            "store": fetched_store,
            "profiles": profiles,
            "traits": traits,
            "observation": fetched_observation,
            "summary": fetched_summary,
            "group_deleted": group_deleted,
            "group_gone": _missing(lambda: memory.trait_groups(store, "Tour").fetch()),
            "profile_deleted": profile_deleted,
            "profile_gone": _missing(memory.profiles(store, profile).fetch),
        }

    seen = await _run(scenario)
    assert seen["store"].id == store
    assert seen["store"].intelligence_service_id == sandbox.identity.intelligence_configuration_id
    assert all(p.startswith("mem_profile_") for p in seen["profiles"])  # the spec lists ids
    assert {(t.trait_group, t.name) for t in seen["traits"]} >= {("Contact", "firstName")}
    assert seen["observation"].content == "Likes tea"
    assert seen["summary"].content == "Asked for tea"
    assert seen["group_deleted"] is True
    assert seen["group_gone"] == 404
    assert seen["profile_deleted"]  # 202 with a message: the model returns the body
    assert seen["profile_gone"] == 404


async def test_knowledge_routes(sandbox: Sandbox) -> None:
    knowledge = sandbox.twilio_client().knowledge.v2

    def scenario() -> dict[str, Any]:
        base = knowledge.knowledge_bases.create(
            knowledge_base_core=KnowledgeBasisList.KnowledgeBaseCore(
                {"displayName": "Tour", "description": "a base for the tour"}
            )
        )
        bases = knowledge.knowledge_bases.list()
        source = knowledge.knowledge(base.id).create(
            knowledge_core=KnowledgeList.KnowledgeCore(
                {
                    "name": "returns",
                    "source": {"type": "Text", "content": "Returns are free for 30 days."},
                }
            )
        )
        listed = knowledge.knowledge(base.id).list()
        fetched = knowledge.knowledge(base.id, source.id).fetch()
        chunks = knowledge.chunks(base.id, source.id).list()
        deleted = knowledge.knowledge(base.id, source.id).delete()
        return {
            "base": base,
            "bases": bases,
            "listed": listed,
            "fetched": fetched,
            "chunks": chunks,
            "deleted": deleted,
        }

    seen = await _run(scenario)
    assert seen["base"].id in {b.id for b in seen["bases"]}
    assert [k.name for k in seen["listed"]] == ["returns"]
    assert seen["fetched"].name == "returns"
    assert any("30 days" in c.content for c in seen["chunks"])
    assert seen["deleted"] is True


async def test_studio_intelligence_and_calls_routes(sandbox: Sandbox) -> None:
    client = sandbox.twilio_client()
    identity = sandbox.identity

    def scenario() -> dict[str, Any]:
        flow = client.studio.v2.flows(identity.studio_flow_sid)
        execution = flow.executions.create(to="+14155550122", from_=identity.phone_number)
        executions = flow.executions.list()
        ended = flow.executions(execution.sid).update(status="ended")
        results = client.intelligence.v3.operator_results.list()
        missing_result = _missing(
            client.intelligence.v3.operator_results("intelligence_operatorresult_none").fetch
        )
        calls = client.api.v2010.account.calls.list()
        return {
            "execution": execution,
            "executions": executions,
            "ended": ended,
            "results": results,
            "missing_result": missing_result,
            "calls": calls,
        }

    seen = await _run(scenario)
    assert seen["execution"].sid in {e.sid for e in seen["executions"]}
    assert seen["ended"].status == "ended"
    assert seen["results"] == []
    assert seen["missing_result"] == 404
    assert seen["calls"] == []
