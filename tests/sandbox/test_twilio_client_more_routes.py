"""The official ``twilio`` client over the routes added for fidelity: Memory identifiers,
edited observations and summaries, observation revisions, trait groups, identity-resolution
settings and operations; Intelligence configurations and operators. Each call goes through the
library's generated models (the newest reference for the specs' shapes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest.conversations.v2.communication import CommunicationList
from twilio.rest.conversations.v2.conversation import ConversationList
from twilio.rest.intelligence.v3.configuration import ConfigurationList as CIConfigurationList
from twilio.rest.memory.v1 import ProfileList
from twilio.rest.memory.v1.conversation_summary import ConversationSummaryList
from twilio.rest.memory.v1.identifier import IdentifierList
from twilio.rest.memory.v1.identity_resolution_setting import IdentityResolutionSettingList
from twilio.rest.memory.v1.observation import ObservationList
from twilio.rest.memory.v1.trait_group import TraitGroupList

from tac.sandbox import Sandbox

pytestmark = pytest.mark.integration

T = TypeVar("T")
WHEN = "2026-01-06T18:30:00Z"


async def _run(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def _profile(memory: Any, store: str, phone: str) -> str:
    created = memory.profiles(store).create(
        profile_data=ProfileList.ProfileData({"traits": {"Contact": {"phone": phone}}})
    )
    return str(created.id)


async def test_identifiers_merge_profiles_that_come_to_share_one(sandbox: Sandbox) -> None:
    memory = sandbox.twilio_client().memory.v1
    store = sandbox.identity.memory_store_id

    def scenario() -> tuple[Any, ...]:
        first = _profile(memory, store, "+14155550101")
        second = _profile(memory, store, "+14155550102")
        listed = memory.identifiers(store, first).list()
        added = memory.identifiers(store, first).create(
            identifier=IdentifierList.Identifier({"idType": "email", "value": "A@Example.com"})
        )
        fetched = memory.identifiers(store, first)("email").fetch()
        changed = memory.identifiers(store, first)("email").patch(
            identifier_update=IdentifierList.IdentifierUpdate(
                {"idType": "email", "oldValue": "a@example.com", "newValue": "b@example.com"}
            )
        )
        # The second profile takes the first's phone: the two become one.
        memory.identifiers(store, second).create(
            identifier=IdentifierList.Identifier({"idType": "phone", "value": "+14155550101"})
        )
        merged = memory.identifiers(store, second).list()
        deleted = memory.identifiers(store, first)("email").delete()
        with pytest.raises(TwilioRestException) as missing:
            memory.identifiers(store, first)("email").fetch()
        return listed, added, fetched, changed, merged, deleted, missing.value

    listed, added, fetched, changed, merged, deleted, missing = await _run(scenario)
    assert [(i.id_type, i.values) for i in listed] == [("phone", ["+14155550101"])]
    assert added.values == ["a@example.com"]  # normalised as the settings say
    assert (fetched.id_type, fetched.values) == ("email", ["a@example.com"])
    assert changed.values == ["b@example.com"]
    by_type = {i.id_type: sorted(i.values) for i in merged}
    assert by_type["phone"] == ["+14155550101", "+14155550102"]
    assert deleted is True
    assert missing.status == 404


async def test_observations_and_summaries_are_edited_with_revisions(sandbox: Sandbox) -> None:
    memory = sandbox.twilio_client().memory.v1
    store = sandbox.identity.memory_store_id

    def scenario() -> tuple[Any, ...]:
        profile = _profile(memory, store, "+14155550103")
        memory.observations(store, profile).create(
            create_observations_request=ObservationList.CreateObservationsRequest(
                {"observations": [{"content": "Likes SMS", "source": "test", "occurredAt": WHEN}]}
            )
        )
        (observation,) = memory.observations(store, profile).list()
        patched = memory.observations(store, profile, observation.id).patch(
            observation_base=ObservationList.ObservationBase({"content": "Likes email"})
        )
        revisions = memory.revisions(store, profile, observation.id).list()
        memory.conversation_summaries(store, profile).create(
            create_summaries_request=ConversationSummaryList.CreateSummariesRequest(
                {
                    "summaries": [
                        {
                            "content": "Asked about an order",
                            "conversationId": "conv_conversation_01",
                            "source": "test",
                            "occurredAt": WHEN,
                        }
                    ]
                }
            )
        )
        (summary,) = memory.conversation_summaries(store, profile).list()
        edited = memory.conversation_summaries(store, profile, summary.id).patch(
            summary_core_patch=ConversationSummaryList.SummaryCorePatch(
                {"content": "Asked about order 4521"}
            )
        )
        return patched, revisions, edited

    patched, revisions, edited = await _run(scenario)
    assert patched.content == "Likes email"
    assert [r.content for r in revisions] == ["Likes SMS"]
    assert edited.content == "Asked about order 4521"
    assert edited.conversation_id == "conv_conversation_01"


async def test_trait_groups_settings_and_their_operations(sandbox: Sandbox) -> None:
    memory = sandbox.twilio_client().memory.v1
    store = sandbox.identity.memory_store_id

    def scenario() -> tuple[Any, ...]:
        created = memory.trait_groups(store).create(
            trait_group_request=TraitGroupList.TraitGroupRequest(
                {
                    "displayName": "Preferences",
                    "description": "What the customer likes",
                    "traits": {"language": {"dataType": "STRING"}},
                }
            )
        )
        operation = memory.operations(created.status_url.rsplit("/", 1)[1]).fetch()
        groups = memory.trait_groups(store).list(include_traits=True)
        patched = memory.trait_groups(store, "Preferences").patch(
            patch_trait_group_request=TraitGroupList.PatchTraitGroupRequest(
                {"traits": {"channel": {"dataType": "STRING"}}}
            )
        )
        fetched = memory.trait_groups(store, "Preferences").fetch(include_traits=True)
        settings = memory.identity_resolution_settings(store).fetch()
        updated = memory.identity_resolution_settings(store).update(
            identity_resolution_settings_core=IdentityResolutionSettingList.IdentityResolutionSettingsCore(
                {"identifierConfigs": [{"idType": "phone", "matchingAlgo": "exact"}]}
            )
        )
        after = memory.identity_resolution_settings(store).fetch()
        return created, operation, groups, patched, fetched, settings, updated, after

    created, operation, groups, patched, fetched, settings, updated, after = await _run(scenario)
    assert created.status_url.startswith("/v1/ControlPlane/Operations/")
    assert operation.status == "COMPLETED"
    assert {g.display_name for g in groups} >= {"Contact", "Preferences"}
    assert patched.status_url
    assert fetched.version == 2
    assert set(fetched.traits) == {"language", "channel"}
    assert [c["idType"] for c in settings.identifier_configs] == ["phone", "email"]
    assert updated.status_url
    assert after.version == settings.version + 1
    assert [c["idType"] for c in after.identifier_configs] == ["phone"]


async def test_intelligence_configurations_and_operators(sandbox: Sandbox) -> None:
    intelligence = sandbox.twilio_client().intelligence.v3
    identity = sandbox.identity

    def scenario() -> tuple[Any, ...]:
        (configuration,) = intelligence.configurations.list()
        fetched = intelligence.configurations(identity.intelligence_configuration_id).fetch()
        hook = "https://example.com/ci"
        updated = intelligence.configurations(identity.intelligence_configuration_id).update(
            update_configuration_request=CIConfigurationList.UpdateConfigurationRequest(
                {
                    "displayName": "sandbox-intelligence",
                    "rules": [
                        {
                            "operators": [{"id": identity.intelligence_summary_operator_id}],
                            "triggers": [{"on": "CONVERSATION_INACTIVE"}],
                            "actions": [{"type": "WEBHOOK", "method": "POST", "url": hook}],
                        }
                    ],
                }
            )
        )
        (operator,) = intelligence.operators.list()
        fetched_operator = intelligence.operators(identity.intelligence_summary_operator_id).fetch()
        return configuration, fetched, updated, operator, fetched_operator

    configuration, fetched, updated, operator, fetched_operator = await _run(scenario)
    assert configuration.id == fetched.id == identity.intelligence_configuration_id
    ons = {rule["triggers"][0]["on"] for rule in fetched.rules}
    assert ons == {"CONVERSATION_INACTIVE", "CONVERSATION_END"}
    inactive = next(r for r in updated.rules if r["triggers"][0]["on"] == "CONVERSATION_INACTIVE")
    assert inactive["actions"] == [
        {"type": "WEBHOOK", "method": "POST", "url": "https://example.com/ci"}
    ]
    assert updated.version == fetched.version + 1
    assert operator.id == fetched_operator.id == identity.intelligence_summary_operator_id
    assert operator.output_format == "JSON"


async def test_a_communication_comes_from_a_participant(sandbox: Sandbox) -> None:
    """Twilio records a communication from one of the conversation's participants: an author
    address that is no participant's is a 400 naming the field, so every webhook carries the
    author's participantId (a recipient not yet a participant, an agent the app has still to
    add, is kept without one)."""
    v2 = sandbox.twilio_client().conversations.v2
    config_id = sandbox.identity.conversation_configuration_id
    customer = {"channel": "SMS", "address": "+14155550104"}
    agent = {"channel": "SMS", "address": sandbox.identity.phone_number}

    def scenario() -> tuple[Any, Any]:
        conversation = v2.conversations.create(
            create_conversation_with_config_request=ConversationList.CreateConversationWithConfigRequest(
                {
                    "configurationId": config_id,
                    "participants": [
                        {"type": "CUSTOMER", "addresses": [customer]},
                        {"type": "AI_AGENT", "addresses": [agent]},
                    ],
                }
            )
        )

        def send(author: dict[str, str]) -> Any:
            return v2.communications(conversation.id).create(
                create_communication_in_conversation_request=CommunicationList.CreateCommunicationInConversationRequest(
                    {
                        "author": author,
                        "content": {"type": "TEXT", "text": "hi"},
                        "recipients": [agent],
                    }
                )
            )

        stored = send(customer)
        with pytest.raises(TwilioRestException) as stranger:
            send({"channel": "SMS", "address": "+14155550999"})
        return stored, stranger.value

    stored, stranger = await _run(scenario)
    assert stored.author["participantId"].startswith("conv_participant_")
    assert stored.recipients[0]["participantId"].startswith("conv_participant_")
    assert stranger.status == 400
    assert "author.address" in str(stranger.msg)
