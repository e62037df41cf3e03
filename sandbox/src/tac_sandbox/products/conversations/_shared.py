"""What the Orchestrator's modules share: constants, schema, and document helpers."""

from __future__ import annotations

import json
import logging
from typing import Any

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import TwilioError, bad_request

logger = logging.getLogger("tac_sandbox.conversations")

# A conversation's `configuration`, in the order of Twilio's model.
CONVERSATION_SETTINGS = (
    "conversationGroupingType",
    "memoryStoreId",
    "channelSettings",
    "memoryExtractionEnabled",
    "intelligenceConfigurationIds",
    "traitExtractionStrategyIds",
    "observationExtractionStrategyIds",
    "statusCallbacks",
    "workflows",
)

PRODUCT = "conversations"
STATUSES = ("ACTIVE", "INACTIVE", "CLOSED")
MESSAGING_CHANNELS = ("SMS", "WHATSAPP", "RCS", "CHAT")
CHAT_AGENT_ADDRESS = "ai-assistant"
# Status timeouts in Twilio minutes: the sandbox's default configuration, and the fallback for a
# channel a configuration says nothing about.
DEFAULT_TIMEOUTS = {"inactive": 5, "closed": 30}
VOICE_TIMEOUTS = {"inactive": 1, "closed": 5}

_DDL = """
CREATE TABLE conv_configurations (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE conv_conversations (
    id TEXT PRIMARY KEY, configuration_id TEXT NOT NULL, status TEXT NOT NULL,
    channel TEXT, last_activity REAL NOT NULL, doc TEXT NOT NULL);
CREATE INDEX conv_conversations_status ON conv_conversations (status);
CREATE TABLE conv_participants (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE INDEX conv_participants_conversation ON conv_participants (conversation_id);
CREATE TABLE conv_communications (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL,
    channel_id TEXT, resource_id TEXT, doc TEXT NOT NULL);
CREATE INDEX conv_communications_conversation ON conv_communications (conversation_id);
CREATE TABLE conv_actions (id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE conv_operations (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""
# One row per participant address: finds the conversations a new one could conflict with.
_DDL_2 = """
CREATE TABLE conv_party (participant_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    channel TEXT NOT NULL, address TEXT NOT NULL, bare TEXT NOT NULL, profile_id TEXT);
CREATE INDEX conv_party_address ON conv_party (address, channel);
CREATE INDEX conv_party_bare ON conv_party (bare);
CREATE INDEX conv_party_profile ON conv_party (profile_id);
CREATE INDEX conv_party_participant ON conv_party (participant_id);
"""
_TABLES = (
    "conv_party",
    "conv_configurations",
    "conv_conversations",
    "conv_participants",
    "conv_communications",
    "conv_actions",
    "conv_operations",
)


def agent_address(ctx: SandboxContext, channel: str) -> str:
    """The sandbox agent's own address on a messaging channel."""
    identity = ctx.identity
    return {
        "SMS": identity.phone_number,
        "WHATSAPP": identity.whatsapp_number,
        "RCS": identity.rcs_sender_id,
        "CHAT": CHAT_AGENT_ADDRESS,
    }.get(channel, identity.phone_number)


def _bare(address: str) -> str:
    return address.split(":", 1)[1] if address.startswith(("whatsapp:", "rcs:")) else address


def _dumps(doc: dict[str, Any]) -> str:
    """JSON in the documents' own key order (Twilio's), unlike the sorted ``_db.dumps``."""
    return json.dumps(doc, separators=(",", ":"))


def _config_defaults() -> dict[str, Any]:
    return {
        "description": None,
        "conversationGroupingType": "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE",
        "memoryStoreId": None,
        "channelSettings": {},
        "statusCallbacks": [],
        "intelligenceConfigurationIds": [],
        "memoryExtractionEnabled": False,
    }


def _ordered_participant(doc: dict[str, Any]) -> dict[str, Any]:
    order = (
        "id",
        "conversationId",
        "accountId",
        "name",
        "type",
        "profileId",
        "addresses",
        "createdAt",
        "updatedAt",
    )
    return {key: doc[key] for key in order if key in doc}


def _owner(participants: list[dict[str, Any]], channel: str, address: str) -> dict[str, Any] | None:
    for participant in participants:
        for entry in participant["addresses"]:
            if entry["channel"] == channel and entry["address"] == address:
                return participant
    return None


def _grouping_key(grouping: str, participants: list[dict[str, Any]]) -> frozenset[Any] | None:
    if grouping == "GROUP_BY_PROFILE":
        profiles = {
            p["profileId"]
            for p in participants
            if p.get("type") == "CUSTOMER" and p.get("profileId")
        }
        if profiles:
            return frozenset(("profile", profile) for profile in profiles)
    keys: set[tuple[str, str]] = set()
    for participant in participants:
        for entry in participant.get("addresses") or []:
            if grouping == "GROUP_BY_PARTICIPANT_ADDRESSES":
                keys.add(("address", _bare(entry["address"])))
            else:
                keys.add((entry["channel"], entry["address"]))
    return frozenset(keys) or None


def _participant_name(given: dict[str, Any]) -> str:
    """A participant's name: given, or (as Twilio fills it) its first address; never null."""
    if given.get("name"):
        return str(given["name"])
    addresses = given.get("addresses") or []
    return str(addresses[0].get("address") or "") if addresses else ""


def _no_participant(where: str, channel: str, address: str) -> TwilioError:
    """Twilio records a communication only from one of the conversation's participants."""
    return bad_request(
        f"Invalid request: {where}.address: {address} on {channel} is no participant's address"
        " in this conversation (add the participant first)"
    )
