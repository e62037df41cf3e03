"""Conversation Orchestrator v2 (``/conversations/v2/...``): configurations, conversations,
participants, communications, the ``SEND_MESSAGE`` action, status timeouts and webhooks.

State lives in SQLite as JSON documents in Twilio's wire shapes. Webhooks go out through
:class:`~tac_sandbox._webhooks.WebhookDispatcher`; other products hear the same events on the
context's bus (topics in :mod:`tac_sandbox._events`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import loads
from tac_sandbox._errors import TwilioError, bad_request, not_found
from tac_sandbox._ids import sid, ttid
from tac_sandbox._notify import Changes
from tac_sandbox._settings import SandboxSettings
from tac_sandbox._time import iso
from tac_sandbox._webhooks import DeliveryPolicy, WebhookDispatcher, control_router
from tac_sandbox.products._orchestrator_models import (
    ActionIn,
    AddressIn,
    CommunicationIn,
    ConfigurationIn,
    ConversationCreateIn,
    ConversationPatchIn,
    ConversationUpdateIn,
    ParticipantIn,
    ParticipantRefIn,
    ParticipantReplaceIn,
    SendMessagePayloadIn,
)

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


class Orchestrator:
    """The Conversation Orchestrator's state and behaviour, shared by its routes, the
    simulated customers and the control API."""

    def __init__(self, ctx: SandboxContext, webhooks: WebhookDispatcher) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.webhooks = webhooks
        self.changes = Changes()
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False
        self._idempotent: dict[tuple[str, str], tuple[int, dict[str, Any], dict[str, str]]] = {}
        self.db.migrate("conversations-1", _DDL)
        self.db.migrate("conversations-2", _DDL_2)

    # ---------------------------------------------------------------- configurations

    def default_configuration(self) -> dict[str, Any]:
        now = iso(time.time())
        settings: dict[str, Any] = {
            channel: {"statusTimeouts": dict(DEFAULT_TIMEOUTS)} for channel in MESSAGING_CHANNELS
        }
        settings["VOICE"] = {"statusTimeouts": dict(VOICE_TIMEOUTS)}
        return {
            "id": self.ctx.identity.conversation_configuration_id,
            "displayName": "opentac sandbox",
            "description": "Default configuration of the opentac sandbox",
            "conversationGroupingType": "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE",
            "memoryStoreId": self.ctx.identity.memory_store_id,
            "channelSettings": settings,
            "statusCallbacks": [
                {"url": self.ctx.settings.app_url.rstrip("/") + "/webhook", "method": "POST"}
            ],
            "intelligenceConfigurationIds": [self.ctx.identity.intelligence_configuration_id],
            "memoryExtractionEnabled": False,
            "createdAt": now,
            "updatedAt": now,
            "version": 1,
        }

    def ensure_default_configuration(self) -> None:
        """Create the default configuration, or point its callbacks at the current app URL."""
        default = self.default_configuration()
        row = self.db.one("SELECT doc FROM conv_configurations WHERE id = ?", (default["id"],))
        if row is None:
            self._save_configuration(default, insert=True)
            return
        current: dict[str, Any] = loads(row["doc"])
        if current.get("statusCallbacks") != default["statusCallbacks"]:
            current["statusCallbacks"] = default["statusCallbacks"]
            self._save_configuration(current)

    def _save_configuration(self, doc: dict[str, Any], *, insert: bool = False) -> None:
        if insert:
            self.db.execute(
                "INSERT INTO conv_configurations (id, doc) VALUES (?, ?)", (doc["id"], _dumps(doc))
            )
        else:
            self.db.execute(
                "UPDATE conv_configurations SET doc = ? WHERE id = ?", (_dumps(doc), doc["id"])
            )

    def configuration(self, configuration_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM conv_configurations WHERE id = ?", (configuration_id,))
        if row is None:
            raise not_found("Configuration", configuration_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def configurations(self, memory_store_id: str | None = None) -> list[dict[str, Any]]:
        docs = [
            loads(r["doc"])
            for r in self.db.query("SELECT doc FROM conv_configurations ORDER BY rowid")
        ]
        return [
            d for d in docs if memory_store_id is None or d.get("memoryStoreId") == memory_store_id
        ]

    def write_configuration(
        self, configuration_id: str | None, body: ConfigurationIn, *, mode: str
    ) -> dict[str, Any]:
        """Create (``mode="create"``), replace (``"put"``) or merge (``"patch"``)."""
        given = body.given()
        now = iso(time.time())
        if mode in ("create", "put") and not given.get("displayName"):
            raise bad_request("Invalid request: displayName: Field required")
        if mode == "create":
            doc: dict[str, Any] = {"id": ttid("conv_configuration"), **_config_defaults()}
            doc.update(given)
            doc.update({"createdAt": now, "updatedAt": now, "version": 1})
            self._save_configuration(doc, insert=True)
            return doc
        assert configuration_id is not None
        current = self.configuration(configuration_id)
        if mode == "put":
            doc = {"id": configuration_id, **_config_defaults(), **given}
        else:
            doc = {**current, **given}
        doc.update(
            {
                "createdAt": current["createdAt"],
                "updatedAt": now,
                "version": int(current.get("version", 1)) + 1,
            }
        )
        self._save_configuration(doc)
        return doc

    def delete_configuration(self, configuration_id: str) -> None:
        self.configuration(configuration_id)
        in_use = self.db.one(
            "SELECT id FROM conv_conversations WHERE configuration_id = ? AND status != 'CLOSED'",
            (configuration_id,),
        )
        if in_use is not None:
            raise TwilioError(
                409,
                f"Configuration {configuration_id} is used by conversation {in_use['id']}",
                headers={"X-Conflicting-Resource-Id": in_use["id"]},
            )
        self.db.execute("DELETE FROM conv_configurations WHERE id = ?", (configuration_id,))

    def operation(self, request: Request, related: dict[str, str]) -> tuple[dict[str, Any], str]:
        """Record a long-running operation that already completed; return 202 body + id."""
        op_id = ttid("conv_operation")
        status_url = (
            f"{str(request.base_url).rstrip('/')}/{PRODUCT}/v2/ControlPlane/Operations/{op_id}"
        )
        now = iso(time.time())
        doc = {
            "operationId": op_id,
            "status": "COMPLETED",
            "createdAt": now,
            "completedAt": now,
            "statusUrl": status_url,
            "related": related,
        }
        self.db.execute("INSERT INTO conv_operations (id, doc) VALUES (?, ?)", (op_id, _dumps(doc)))
        return {"statusUrl": status_url, "related": related}, op_id

    def get_operation(self, op_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM conv_operations WHERE id = ?", (op_id,))
        if row is None:
            raise not_found("Operation", op_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    # ---------------------------------------------------------------- conversations

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM conv_conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise not_found("Conversation", conversation_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def participants(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT doc FROM conv_participants WHERE conversation_id = ? ORDER BY rowid",
            (conversation_id,),
        )
        return [loads(r["doc"]) for r in rows]

    def with_participants(self, conversation: dict[str, Any]) -> dict[str, Any]:
        """The conversation as the API returns it: its participants, and its complete
        ``configuration`` (the Configuration's settings under its own overrides)."""
        effective = self.effective_configuration(conversation)
        configuration = {k: effective[k] for k in CONVERSATION_SETTINGS if k in effective}
        return {
            **conversation,
            "configuration": configuration,
            "participants": self.participants(conversation["id"]),
        }

    def conversations(
        self,
        statuses: Iterable[str] = (),
        channel_id: str | None = None,
        channel: str | None = None,
    ) -> list[dict[str, Any]]:
        wanted = set(statuses)
        rows = self.db.query("SELECT doc, channel, status FROM conv_conversations ORDER BY rowid")
        docs = [
            loads(r["doc"])
            for r in rows
            if (not wanted or r["status"] in wanted)
            and (channel is None or r["channel"] == channel)
        ]
        if channel_id is not None:
            ids = self._conversations_with_channel_id(channel_id)
            docs = [d for d in docs if d["id"] in ids]
        return docs

    def _conversations_with_channel_id(self, channel_id: str) -> set[str]:
        rows = self.db.query(
            "SELECT DISTINCT conversation_id FROM conv_communications"
            " WHERE channel_id = ? OR resource_id = ?",
            (channel_id, channel_id),
        )
        ids = {r["conversation_id"] for r in rows}
        for row in self.db.query(
            "SELECT conversation_id, doc FROM conv_participants WHERE doc LIKE ?",
            (f"%{channel_id}%",),
        ):
            if any(a.get("channelId") == channel_id for a in loads(row["doc"])["addresses"]):
                ids.add(row["conversation_id"])
        return ids

    def effective_configuration(
        self, conversation: dict[str, Any], cache: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The configuration's settings with the conversation's own overrides on top."""
        config_id = conversation["configurationId"]
        base = cache.get(config_id) if cache is not None else None
        if base is None:
            try:
                base = self.configuration(config_id)
            except TwilioError:
                base = {}
            if cache is not None:
                cache[config_id] = base
        own: dict[str, Any] = conversation.get("configuration") or {}
        merged = {**base, **{k: v for k, v in own.items() if k != "channelSettings"}}
        settings = dict(base.get("channelSettings") or {})
        settings.update(own.get("channelSettings") or {})
        merged["channelSettings"] = settings
        return merged

    def status_callbacks(self, conversation: dict[str, Any]) -> list[dict[str, str]]:
        callbacks: list[dict[str, str]] = (
            self.effective_configuration(conversation).get("statusCallbacks") or []
        )
        return callbacks

    async def create_conversation(self, body: ConversationCreateIn) -> dict[str, Any]:
        configuration = self.configuration(body.configurationId)
        own = body.configuration.given() if body.configuration else {}
        grouping = own.get("conversationGroupingType") or configuration.get(
            "conversationGroupingType", "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE"
        )
        store_id = own.get("memoryStoreId") or configuration.get("memoryStoreId")
        now_ts = time.time()
        now = iso(now_ts)
        conversation_id = ttid("conv_conversation")
        drafts = [
            await self._participant_doc(conversation_id, p.given(), store_id, now)
            for p in body.participants or []
        ]
        conflict = self.find_grouped(body.configurationId, grouping, drafts, ("ACTIVE",))
        if conflict is not None:
            raise TwilioError(
                409,
                "An active conversation already exists for these participants",
                headers={"X-Conflicting-Resource-Id": conflict["id"]},
            )
        doc: dict[str, Any] = {
            "id": conversation_id,
            "accountId": self.ctx.identity.account_sid,
            "configurationId": body.configurationId,
            "status": "ACTIVE",
            "name": body.name,
            "createdAt": now,
            "updatedAt": now,
        }
        if own:
            doc["configuration"] = own
        if body.metadata:
            doc["metadata"] = dict(body.metadata)
        channel = next((p["addresses"][0]["channel"] for p in drafts if p["addresses"]), None)
        self.db.execute(
            "INSERT INTO conv_conversations (id, configuration_id, status, channel,"
            " last_activity, doc) VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_id, body.configurationId, "ACTIVE", channel, now_ts, _dumps(doc)),
        )
        await self._emit(
            doc, "CONVERSATION_CREATED", doc, "conversation.created", {"conversation": doc}
        )
        for participant in drafts:
            await self._insert_participant(doc, participant)
        self.wake()
        return doc

    def find_grouped(
        self,
        configuration_id: str,
        grouping: str,
        participants: list[dict[str, Any]],
        statuses: tuple[str, ...],
    ) -> dict[str, Any] | None:
        """A conversation in ``statuses`` that groups the same participants, if any."""
        key = _grouping_key(grouping, participants)
        if key is None:
            return None
        marks = ",".join("?" for _ in statuses)
        candidates: set[str] | None = None
        for kind, value in sorted(key):  # every element must match: intersect
            if kind == "profile":
                where, args = "p.profile_id = ?", [value]
            elif kind == "address":
                where, args = "p.bare = ?", [value]
            else:
                where, args = "p.channel = ? AND p.address = ?", [kind, value]
            rows = self.db.query(
                "SELECT DISTINCT p.conversation_id FROM conv_party p JOIN conv_conversations c"
                f" ON c.id = p.conversation_id WHERE c.configuration_id = ?"
                f" AND c.status IN ({marks}) AND {where}",
                (configuration_id, *statuses, *args),
            )
            hits = {r[0] for r in rows}
            candidates = hits if candidates is None else candidates & hits
            if not candidates:
                return None
        assert candidates is not None
        ids = sorted(candidates)
        by_conversation: dict[str, list[dict[str, Any]]] = {}
        for row in self.db.query(
            "SELECT conversation_id, doc FROM conv_participants"
            f" WHERE conversation_id IN ({','.join('?' for _ in ids)}) ORDER BY rowid",
            ids,
        ):
            by_conversation.setdefault(row["conversation_id"], []).append(loads(row["doc"]))
        matches = [
            cid
            for cid, members in by_conversation.items()
            if _grouping_key(grouping, members) == key
        ]
        if not matches:
            return None
        latest = self.db.one(
            f"SELECT doc FROM conv_conversations WHERE id IN ({','.join('?' for _ in matches)})"
            " ORDER BY rowid DESC",
            matches,
        )
        found: dict[str, Any] | None = loads(latest["doc"]) if latest is not None else None
        return found

    async def set_status(self, conversation: dict[str, Any], status: str) -> dict[str, Any]:
        """Move a conversation to ``status``, with CONVERSATION_UPDATED; CLOSED is final."""
        previous = conversation["status"]
        if previous == status:
            return conversation
        if previous == "CLOSED":
            raise bad_request(f"Conversation {conversation['id']} is CLOSED and cannot be reopened")
        return await self._update_conversation(conversation, {"status": status})

    async def _update_conversation(
        self, conversation: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any]:
        previous_status = conversation["status"]
        doc = {**conversation, **changes, "updatedAt": iso(time.time())}
        if not doc.get("metadata"):
            doc.pop("metadata", None)
        params: list[Any] = [doc["status"], _dumps(doc)]
        activity = ""
        if doc["status"] == "ACTIVE" and previous_status != "ACTIVE":
            activity = ", last_activity = ?"
            params.append(time.time())
        self.db.execute(
            f"UPDATE conv_conversations SET status = ?, doc = ?{activity} WHERE id = ?",
            (*params, doc["id"]),
        )
        meaningful = doc["status"] != previous_status or doc.get("name") != conversation.get("name")
        if meaningful:
            await self._emit(
                doc,
                "CONVERSATION_UPDATED",
                doc,
                "conversation.updated",
                {"conversation": doc, "previous_status": previous_status},
            )
        if doc["status"] != previous_status:
            await self.ctx.bus.publish(
                "conversation.status_changed",
                {
                    "conversation": doc,
                    "previous_status": previous_status,
                    "status": doc["status"],
                    "participants": self.participants(doc["id"]),
                    "communications": self.communications(doc["id"]),
                },
            )
        self.changes.notify()
        self.wake()
        return doc

    async def update_conversation(
        self, conversation_id: str, body: ConversationUpdateIn
    ) -> dict[str, Any]:
        conversation = self.conversation(conversation_id)
        if conversation["status"] == "CLOSED" and body.status != "CLOSED":
            raise bad_request(f"Conversation {conversation_id} is CLOSED and cannot be reopened")
        changes: dict[str, Any] = {"status": body.status}
        if body.name is not None:
            changes["name"] = body.name
        if body.metadata is not None:
            changes["metadata"] = dict(body.metadata)
        return await self._update_conversation(conversation, changes)

    async def patch_conversation(
        self, conversation_id: str, body: ConversationPatchIn
    ) -> dict[str, Any]:
        conversation = self.conversation(conversation_id)
        changes: dict[str, Any] = {}
        if body.status is not None:
            if conversation["status"] == "CLOSED" and body.status != "CLOSED":
                raise bad_request(
                    f"Conversation {conversation_id} is CLOSED and cannot be reopened"
                )
            changes["status"] = body.status
        if body.name is not None:
            changes["name"] = body.name
        if body.metadata is not None:
            metadata = dict(conversation.get("metadata") or {})
            for key, value in body.metadata.items():
                if value is None:
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            if len(metadata) > 8:
                raise bad_request("Invalid request: metadata: at most 8 entries")
            changes["metadata"] = metadata
        if body.configuration is not None and body.configuration.statusCallbacks is not None:
            own = dict(conversation.get("configuration") or {})
            own["statusCallbacks"] = [c.given() for c in body.configuration.statusCallbacks]
            changes["configuration"] = own
        return await self._update_conversation(conversation, changes)

    def delete_conversation(self, conversation_id: str) -> None:
        self.conversation(conversation_id)
        with self.db.transaction() as conn:
            for table in ("conv_party", "conv_participants", "conv_communications", "conv_actions"):
                conn.execute(f"DELETE FROM {table} WHERE conversation_id = ?", (conversation_id,))
            conn.execute("DELETE FROM conv_conversations WHERE id = ?", (conversation_id,))

    # ---------------------------------------------------------------- participants

    async def _participant_doc(
        self, conversation_id: str, given: dict[str, Any], store_id: str | None, now: str
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": ttid("conv_participant"),
            "conversationId": conversation_id,
            "accountId": self.ctx.identity.account_sid,
            "name": _participant_name(given),
            "type": given.get("type") or "UNKNOWN",
            "addresses": given.get("addresses") or [],
            "createdAt": now,
            "updatedAt": now,
        }
        profile_id = given.get("profileId")
        if profile_id is None and doc["type"] == "CUSTOMER":
            profile_id = await self._resolve_profile(store_id, doc["addresses"])
        if profile_id:
            doc["profileId"] = profile_id
        return _ordered_participant(doc)

    async def _resolve_profile(
        self, store_id: str | None, addresses: list[dict[str, Any]]
    ) -> str | None:
        memory = self.ctx.products.memory
        if memory is None or not store_id or not addresses:
            return None
        first = addresses[0]
        try:
            profile_id = await memory.resolve_profile(store_id, first["channel"], first["address"])
        except Exception:
            logger.exception("identity resolution failed for %s", first["address"])
            return None
        return str(profile_id) if profile_id else None

    def _index_participant(self, participant: dict[str, Any]) -> None:
        self.db.execute("DELETE FROM conv_party WHERE participant_id = ?", (participant["id"],))
        for entry in participant["addresses"]:
            self.db.execute(
                "INSERT INTO conv_party (participant_id, conversation_id, channel, address, bare,"
                " profile_id) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    participant["id"],
                    participant["conversationId"],
                    entry["channel"],
                    entry["address"],
                    _bare(entry["address"]),
                    participant.get("profileId") if participant["type"] == "CUSTOMER" else None,
                ),
            )

    async def _insert_participant(
        self, conversation: dict[str, Any], participant: dict[str, Any]
    ) -> None:
        self.db.execute(
            "INSERT INTO conv_participants (id, conversation_id, doc) VALUES (?, ?, ?)",
            (participant["id"], conversation["id"], _dumps(participant)),
        )
        self._index_participant(participant)
        if participant["addresses"]:
            self.db.execute(
                "UPDATE conv_conversations SET channel = COALESCE(channel, ?) WHERE id = ?",
                (participant["addresses"][0]["channel"], conversation["id"]),
            )
        await self._emit(
            conversation,
            "PARTICIPANT_ADDED",
            participant,
            "participant.added",
            {"participant": participant},
        )

    def participant(self, conversation_id: str, participant_id: str) -> dict[str, Any]:
        row = self.db.one(
            "SELECT doc FROM conv_participants WHERE id = ? AND conversation_id = ?",
            (participant_id, conversation_id),
        )
        if row is None:
            raise not_found("Participant", participant_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    async def add_participant(self, conversation_id: str, body: ParticipantIn) -> dict[str, Any]:
        conversation = self.conversation(conversation_id)
        if conversation["status"] == "CLOSED":
            raise bad_request(f"Conversation {conversation_id} is CLOSED")
        wanted = {(a.channel, a.address) for a in body.addresses}
        for existing in self.participants(conversation_id):
            if wanted & {(a["channel"], a["address"]) for a in existing["addresses"]}:
                raise TwilioError(
                    409,
                    "A participant with this address already exists in the conversation",
                    headers={"X-Conflicting-Resource-Id": existing["id"]},
                )
        store_id = self.effective_configuration(conversation).get("memoryStoreId")
        doc = await self._participant_doc(conversation_id, body.given(), store_id, iso(time.time()))
        await self._insert_participant(conversation, doc)
        return doc

    async def replace_participant(
        self, conversation_id: str, participant_id: str, body: ParticipantReplaceIn
    ) -> dict[str, Any]:
        conversation = self.conversation(conversation_id)
        current = self.participant(conversation_id, participant_id)
        given = body.given()
        doc: dict[str, Any] = {
            **{k: current[k] for k in ("id", "conversationId", "accountId", "createdAt")},
            "name": _participant_name(given),
            "type": given.get("type") or "UNKNOWN",
            "addresses": given.get("addresses") or [],
            "updatedAt": iso(time.time()),
        }
        profile_id = given.get("profileId")
        if profile_id is None and doc["type"] == "CUSTOMER":
            store_id = self.effective_configuration(conversation).get("memoryStoreId")
            profile_id = await self._resolve_profile(store_id, doc["addresses"])
        if profile_id:
            doc["profileId"] = profile_id
        doc = _ordered_participant(doc)
        self.db.execute(
            "UPDATE conv_participants SET doc = ? WHERE id = ?", (_dumps(doc), participant_id)
        )
        self._index_participant(doc)
        await self._emit(
            conversation, "PARTICIPANT_UPDATED", doc, "participant.updated", {"participant": doc}
        )
        return doc

    # ---------------------------------------------------------------- communications

    def communications(
        self, conversation_id: str, channel_id: str | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT doc FROM conv_communications WHERE conversation_id = ? AND rowid > ?"
            " AND (? IS NULL OR channel_id = ? OR resource_id = ?) ORDER BY rowid",
            (conversation_id, after, channel_id, channel_id, channel_id),
        )
        return [loads(r["doc"]) for r in rows]

    def communications_with_seq(
        self, conversation_id: str, after: int = 0
    ) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.query(
            "SELECT rowid AS seq, doc FROM conv_communications"
            " WHERE conversation_id = ? AND rowid > ? ORDER BY rowid",
            (conversation_id, after),
        )
        return [(int(r["seq"]), loads(r["doc"])) for r in rows]

    def communication(self, conversation_id: str, communication_id: str) -> dict[str, Any]:
        row = self.db.one(
            "SELECT doc FROM conv_communications WHERE id = ? AND conversation_id = ?",
            (communication_id, conversation_id),
        )
        if row is None:
            raise not_found("Communication", communication_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def communication_seq(self, communication_id: str) -> int:
        row = self.db.one("SELECT rowid FROM conv_communications WHERE id = ?", (communication_id,))
        return int(row[0]) if row is not None else 0

    def replies_to(
        self, channel: str, address: str, after: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """Communications addressed to ``address`` on ``channel`` after cursor ``after``."""
        rows = self.db.query(
            "SELECT rowid AS seq, doc FROM conv_communications WHERE rowid > ? AND doc LIKE ?"
            " ORDER BY rowid",
            (after, f"%{address}%"),
        )
        found = []
        for row in rows:
            doc = loads(row["doc"])
            if any(r["address"] == address and r["channel"] == channel for r in doc["recipients"]):
                found.append((int(row["seq"]), doc))
        return found

    async def add_communication(
        self, conversation_id: str, body: CommunicationIn
    ) -> tuple[dict[str, Any], bool]:
        """Store a communication (or update the one with the same ``resourceId``)."""
        conversation = self.conversation(conversation_id)
        if conversation["status"] == "CLOSED":
            raise bad_request(f"Conversation {conversation_id} is CLOSED")
        participants = self.participants(conversation_id)
        author = self._resolve_party(body.author.given(), participants, "author")
        recipients = []
        for index, recipient in enumerate(body.recipients):
            resolved = self._resolve_party(recipient.given(), participants, f"recipients.{index}")
            resolved["deliveryStatus"] = recipient.deliveryStatus or "DELIVERED"
            recipients.append(resolved)
        content = body.content.given()
        if body.resourceId:
            row = self.db.one(
                "SELECT id, doc FROM conv_communications WHERE conversation_id = ?"
                " AND resource_id = ?",
                (conversation_id, body.resourceId),
            )
            if row is not None:
                updated = {
                    **loads(row["doc"]),
                    "content": content,
                    "recipients": recipients,
                    "updatedAt": iso(time.time()),
                }
                self.db.execute(
                    "UPDATE conv_communications SET doc = ? WHERE id = ?",
                    (_dumps(updated), row["id"]),
                )
                await self._emit(
                    conversation,
                    "COMMUNICATION_UPDATED",
                    updated,
                    "communication.updated",
                    {"communication": updated, "conversation": conversation},
                )
                self.changes.notify()
                return updated, False
        doc = await self.store_communication(
            conversation,
            author=author,
            content=content,
            recipients=recipients,
            channel_id=body.channelId,
            resource_id=body.resourceId,
            occurred_at=body.occurredAt,
        )
        return doc, True

    def _resolve_party(
        self, party: dict[str, Any], participants: list[dict[str, Any]], where: str
    ) -> dict[str, Any]:
        participant_id = party.get("participantId")
        if participant_id is not None:
            if not any(p["id"] == participant_id for p in participants):
                raise bad_request(
                    f"Invalid request: {where}.participantId: no participant {participant_id}"
                    " in this conversation"
                )
        else:
            owner = _owner(participants, party["channel"], party["address"])
            if owner is None:
                raise _no_participant(where, party["channel"], party["address"])
            participant_id = owner["id"]
        return {
            "address": party["address"],
            "channel": party["channel"],
            "participantId": participant_id,
        }

    async def store_communication(
        self,
        conversation: dict[str, Any],
        *,
        author: dict[str, Any],
        content: dict[str, Any],
        recipients: list[dict[str, Any]],
        channel_id: str | None = None,
        resource_id: str | None = None,
        occurred_at: str | None = None,
    ) -> dict[str, Any]:
        """Insert a communication; reactivate an INACTIVE conversation; fire the events."""
        now_ts = time.time()
        now = iso(now_ts)
        doc: dict[str, Any] = {
            "id": ttid("conv_communication"),
            "conversationId": conversation["id"],
            "accountId": self.ctx.identity.account_sid,
            "author": author,
            "content": content,
        }
        if channel_id:
            doc["channelId"] = channel_id
        if resource_id:
            doc["resourceId"] = resource_id
        doc.update(
            {
                "recipients": recipients,
                "createdAt": now,
                "updatedAt": now,
                "occurredAt": occurred_at or now,
            }
        )
        self.db.execute(
            "INSERT INTO conv_communications (id, conversation_id, channel_id, resource_id, doc)"
            " VALUES (?, ?, ?, ?, ?)",
            (doc["id"], conversation["id"], channel_id, resource_id, _dumps(doc)),
        )
        self.db.execute(
            "UPDATE conv_conversations SET last_activity = ?, channel = COALESCE(channel, ?)"
            " WHERE id = ?",
            (now_ts, author["channel"], conversation["id"]),
        )
        if conversation["status"] == "INACTIVE":
            conversation = await self._update_conversation(conversation, {"status": "ACTIVE"})
        await self._emit(
            conversation,
            "COMMUNICATION_CREATED",
            doc,
            "communication.created",
            {"communication": doc, "conversation": conversation},
        )
        self.changes.notify()
        self.wake()
        return doc

    async def set_delivery_status(
        self, conversation: dict[str, Any], communication: dict[str, Any], status: str
    ) -> dict[str, Any]:
        doc = {
            **communication,
            "recipients": [{**r, "deliveryStatus": status} for r in communication["recipients"]],
            "updatedAt": iso(time.time()),
        }
        self.db.execute(
            "UPDATE conv_communications SET doc = ? WHERE id = ?", (_dumps(doc), doc["id"])
        )
        await self._emit(
            conversation,
            "COMMUNICATION_UPDATED",
            doc,
            "communication.updated",
            {"communication": doc, "conversation": conversation},
        )
        return doc

    # ---------------------------------------------------------------- actions

    async def run_action(self, conversation_id: str, body: ActionIn) -> dict[str, Any]:
        conversation = self.conversation(conversation_id)
        if body.type != "SEND_MESSAGE":
            raise bad_request(
                f"Invalid request: type: unsupported action type {body.type!r}"
                " (the sandbox supports SEND_MESSAGE)"
            )
        try:
            payload = SendMessagePayloadIn.model_validate(body.payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"payload.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise bad_request(f"Invalid request: {problems}") from exc
        if conversation["status"] == "CLOSED":
            raise bad_request(f"Conversation {conversation_id} is CLOSED")
        participants = self.participants(conversation_id)
        sender = self._action_party(payload.from_, participants, "payload.from", None)
        channel = sender["channel"]
        recipients = [
            self._action_party(ref, participants, f"payload.to.{i}", channel)
            for i, ref in enumerate(payload.to)
        ]
        text = payload.content.text
        if not text:
            if payload.content.contentId:
                text = f"[content template {payload.content.contentId}]"
            elif payload.content.mediaUrls:
                text = ""
            else:
                raise bad_request("Invalid request: payload.content.text: Field required")
        settings = payload.channelSettings or {}
        if channel == "CHAT" and not settings.get("channelId"):
            raise bad_request(
                "Invalid request: payload.channelSettings.channelId is required for CHAT"
            )
        message_sid = sid("SM")
        now = iso(time.time())
        action: dict[str, Any] = {
            "id": ttid("conv_action"),
            "type": "action-send-message",
            "status": "PENDING",
            "conversationId": conversation_id,
            "related": {"messageSid": message_sid},
            "createdAt": now,
        }
        accepted = dict(action)
        channel_id = str(settings["channelId"]) if channel == "CHAT" else message_sid
        communication = await self.store_communication(
            conversation,
            author=sender,
            content={"type": "TEXT", "text": text},
            recipients=[{**r, "deliveryStatus": "IN_PROGRESS"} for r in recipients],
            channel_id=channel_id,
            resource_id=message_sid,
        )
        conversation = self.conversation(conversation_id)
        await self.set_delivery_status(conversation, communication, "DELIVERED")
        done = iso(time.time())
        action.update(
            {
                "status": "COMPLETED",
                "related": {"messageSid": message_sid, "communicationId": communication["id"]},
                "updatedAt": done,
                "completedAt": done,
                "failureReason": None,
            }
        )
        self.db.execute(
            "INSERT INTO conv_actions (id, conversation_id, doc) VALUES (?, ?, ?)",
            (action["id"], conversation_id, _dumps(action)),
        )
        return accepted

    def _action_party(
        self,
        ref: ParticipantRefIn,
        participants: list[dict[str, Any]],
        where: str,
        channel: str | None,
    ) -> dict[str, Any]:
        if ref.participantId is not None:
            participant = next((p for p in participants if p["id"] == ref.participantId), None)
            if participant is None:
                raise bad_request(
                    f"Invalid request: {where}.participantId: no participant"
                    f" {ref.participantId} in this conversation"
                )
            wanted = ref.channel or channel
            address = next(
                (a for a in participant["addresses"] if wanted is None or a["channel"] == wanted),
                None,
            )
            if address is None:
                raise bad_request(
                    f"Invalid request: {where}: participant {ref.participantId} has no"
                    f" {wanted or 'messaging'} address"
                )
            return {
                "address": address["address"],
                "channel": address["channel"],
                "participantId": participant["id"],
            }
        if ref.address is None or (ref.channel or channel) is None:
            raise bad_request(
                f"Invalid request: {where}: give participantId, or address and channel"
            )
        resolved_channel = str(ref.channel or channel)
        owner = _owner(participants, resolved_channel, ref.address)
        if owner is None:
            raise _no_participant(where, resolved_channel, ref.address)
        return {"address": ref.address, "channel": resolved_channel, "participantId": owner["id"]}

    def action(self, conversation_id: str, action_id: str) -> dict[str, Any]:
        row = self.db.one(
            "SELECT doc FROM conv_actions WHERE id = ? AND conversation_id = ?",
            (action_id, conversation_id),
        )
        if row is None:
            raise not_found("Action", action_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    # ---------------------------------------------------------------- simulated customers

    async def customer_message(
        self,
        channel: str,
        address: str,
        text: str,
        name: str | None = None,
        participant_type: str = "CUSTOMER",
    ) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """A person texts the agent: reuse their open conversation or start one, like Twilio."""
        configuration = self.configuration(self.ctx.identity.conversation_configuration_id)
        agent = agent_address(self.ctx, channel)
        customer_address: dict[str, Any] = {"channel": channel, "address": address}
        grouping = configuration.get(
            "conversationGroupingType", "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE"
        )
        probe = [
            {"type": "CUSTOMER", "addresses": [customer_address]},
            {"type": "AI_AGENT", "addresses": [{"channel": channel, "address": agent}]},
        ]
        conversation = self.find_grouped(
            configuration["id"], grouping, probe, ("ACTIVE", "INACTIVE")
        )
        created = conversation is None
        if conversation is None:
            if channel == "CHAT":
                customer_address["channelId"] = sid("CH")
            body = ConversationCreateIn(
                configurationId=configuration["id"],
                participants=[
                    ParticipantIn(
                        type=participant_type,
                        name=name,
                        addresses=[AddressIn(**customer_address)],
                    ),
                    ParticipantIn(
                        type="AI_AGENT",
                        addresses=[AddressIn(channel=channel, address=agent)],
                    ),
                ],
            )
            conversation = await self.create_conversation(body)
        participants = self.participants(conversation["id"])
        customer = _owner(participants, channel, address)
        agent_participant = _owner(participants, channel, agent)
        author: dict[str, Any] = {"address": address, "channel": channel}
        if customer is not None:
            author["participantId"] = customer["id"]
        recipient: dict[str, Any] = {"address": agent, "channel": channel}
        if agent_participant is not None:
            recipient["participantId"] = agent_participant["id"]
        recipient["deliveryStatus"] = "DELIVERED"
        chat_id = None
        if customer is not None:
            chat_id = next(
                (a.get("channelId") for a in customer["addresses"] if a["channel"] == "CHAT"), None
            )
        message_sid = sid("SM")
        communication = await self.store_communication(
            conversation,
            author=author,
            content={"type": "TEXT", "text": text},
            recipients=[recipient],
            channel_id=chat_id or message_sid,
            resource_id=None if channel == "CHAT" else message_sid,
        )
        return self.conversation(conversation["id"]), communication, created

    # ---------------------------------------------------------------- events and timeouts

    async def _emit(
        self,
        conversation: dict[str, Any],
        event_type: str,
        data: dict[str, Any],
        topic: str,
        payload: dict[str, Any],
    ) -> None:
        self.webhooks.send(
            conversation["id"], self.status_callbacks(conversation), event_type, data
        )
        await self.ctx.bus.publish(topic, payload)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._timer = asyncio.get_running_loop().create_task(self._run_timeouts())

    async def stop(self) -> None:
        if self._timer is not None:
            # The flag, not only the cancellation: wait_for may swallow a cancel that races
            # with the wake-up event (Python < 3.12).
            self._stopping = True
            self.wake()
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    async def _run_timeouts(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            try:
                next_due = await self._sweep(time.time())
            except Exception:
                logger.exception("status timeout sweep failed")
                next_due = time.time() + 1.0
            delay = None if next_due is None else max(next_due - time.time(), 0.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _sweep(self, now: float) -> float | None:
        """Apply due INACTIVE/CLOSED transitions; return when the next one is due."""
        unit = self.ctx.settings.status_timeout_unit_seconds
        next_due: float | None = None
        rows = self.db.query(
            "SELECT id, configuration_id, status, channel, last_activity,"
            " instr(doc, '\"channelSettings\"') > 0 AS own_settings FROM conv_conversations"
            " WHERE status IN ('ACTIVE', 'INACTIVE')"
        )
        configurations: dict[str, dict[str, Any]] = {}
        shared: dict[tuple[str, str | None], dict[str, float]] = {}
        for row in rows:
            if row["own_settings"]:
                conversation = self.conversation(row["id"])
                timeouts = self._timeouts(conversation, row["channel"], configurations)
            else:
                slot = (row["configuration_id"], row["channel"])
                if slot not in shared:
                    stub = {"configurationId": row["configuration_id"]}
                    shared[slot] = self._timeouts(stub, row["channel"], configurations)
                timeouts = shared[slot]
            inactive_at = row["last_activity"] + timeouts["inactive"] * unit
            closed_at = row["last_activity"] + timeouts["closed"] * unit
            due = inactive_at if row["status"] == "ACTIVE" else closed_at
            if now < due:
                next_due = due if next_due is None else min(next_due, due)
                continue
            conversation = self.conversation(row["id"])
            if row["status"] == "ACTIVE":
                conversation = await self._update_conversation(conversation, {"status": "INACTIVE"})
            if now >= closed_at:
                await self._update_conversation(conversation, {"status": "CLOSED"})
            else:
                next_due = closed_at if next_due is None else min(next_due, closed_at)
        return next_due

    def _timeouts(
        self,
        conversation: dict[str, Any],
        channel: str | None,
        cache: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, float]:
        effective = self.effective_configuration(conversation, cache)
        settings = effective.get("channelSettings") or {}
        fallback = VOICE_TIMEOUTS if channel == "VOICE" else DEFAULT_TIMEOUTS
        given = (settings.get(channel or "", {}) or {}).get("statusTimeouts") or {}
        return {
            "inactive": float(given.get("inactive") or fallback["inactive"]),
            "closed": float(given.get("closed") or fallback["closed"]),
        }

    async def reset(self) -> None:
        await self.webhooks.reset()
        with self.db.transaction() as conn:
            for table in _TABLES:
                conn.execute(f"DELETE FROM {table}")
        self._idempotent.clear()
        self.ensure_default_configuration()
        self.changes.notify()
        self.wake()

    # ---------------------------------------------------------------- idempotency

    def replay(self, key: str | None, scope: str) -> JSONResponse | None:
        if not key:
            return None
        hit = self._idempotent.get((scope, key))
        if hit is None:
            return None
        status, body, headers = hit
        return JSONResponse(body, status_code=status, headers=headers)

    def remember(
        self,
        key: str | None,
        scope: str,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> JSONResponse:
        if key:
            self._idempotent[(scope, key)] = (status, body, headers)
        return JSONResponse(body, status_code=status, headers=headers)


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


# -------------------------------------------------------------------- pagination


def paginate(request: Request, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Twilio's token pagination: ``pageSize`` (1..1000, default 50) and ``pageToken``."""
    params = request.query_params
    raw_size = params.get("pageSize") or params.get("PageSize") or "50"
    try:
        size = int(raw_size)
    except ValueError:
        size = 0
    if not 1 <= size <= 1000:
        raise bad_request(f"Invalid request: pageSize: must be 1..1000, got {raw_size!r}")
    token = params.get("pageToken") or params.get("PageToken")
    offset = _decode_token(token) if token else 0
    page = items[offset : offset + size]
    meta: dict[str, Any] = {"key": key, "pageSize": len(page)}  # the number returned
    if offset + size < len(items):
        meta["nextToken"] = _encode_token(offset + size)
    if offset > 0:
        meta["previousToken"] = _encode_token(max(offset - size, 0))
    return {key: page, "meta": meta}


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset":
            raise ValueError(text)
        return max(int(number), 0)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request("Invalid request: pageToken: not a token this API issued") from exc


# -------------------------------------------------------------------- routes


def install(ctx: SandboxContext) -> None:
    """Mount Conversation Orchestrator v2 under ``/conversations`` and its control API."""
    settings = ctx.settings
    webhooks = ctx.products.webhooks
    if webhooks is None:
        webhooks = WebhookDispatcher(
            ctx.identity.auth_token,
            DeliveryPolicy(
                attempts=settings.webhook_attempts,
                base_delay_seconds=settings.webhook_base_delay_seconds,
                timeout_seconds=settings.webhook_timeout_seconds,
            ),
        )
        ctx.products.webhooks = webhooks
        ctx.add_control(control_router(webhooks))
        ctx.on_shutdown(webhooks.close)
    orchestrator = Orchestrator(ctx, webhooks)
    orchestrator.ensure_default_configuration()
    ctx.products.conversations = orchestrator
    ctx.on_startup(orchestrator.start)
    ctx.on_shutdown(orchestrator.stop)
    ctx.on_reset(orchestrator.reset)
    ctx.add_product(PRODUCT, _router(orchestrator))
    ctx.add_control(_control(orchestrator))

    from tac_sandbox.phone.customers import control_router as customer_router

    ctx.add_control(customer_router(orchestrator))


def _router(orc: Orchestrator) -> APIRouter:
    router = APIRouter(prefix="/v2")

    # Configurations (control plane): writes answer 202 with an already-completed operation.

    @router.get("/ControlPlane/Configurations")
    async def list_configurations(request: Request) -> dict[str, Any]:
        store = request.query_params.get("memoryStoreId")
        return paginate(request, "configurations", orc.configurations(store))

    @router.post("/ControlPlane/Configurations")
    async def create_configuration(request: Request, body: ConfigurationIn) -> Response:
        key = request.headers.get("idempotency-key")
        replay = orc.replay(key, "create")
        if replay is not None:
            return replay
        doc = orc.write_configuration(None, body, mode="create")
        return _accepted(orc, request, key, "create", doc["id"])

    @router.get("/ControlPlane/Configurations/{configuration_id}")
    async def get_configuration(configuration_id: str) -> dict[str, Any]:
        return orc.configuration(configuration_id)

    def update(mode: str) -> Any:
        async def update_configuration(
            configuration_id: str, request: Request, body: ConfigurationIn
        ) -> Response:
            key = request.headers.get("idempotency-key")
            operation = f"{mode}:{configuration_id}"
            replay = orc.replay(key, operation)
            if replay is not None:
                return replay
            orc.write_configuration(configuration_id, body, mode=mode)
            return _accepted(orc, request, key, operation, configuration_id)

        return update_configuration

    router.put("/ControlPlane/Configurations/{configuration_id}")(update("put"))
    router.patch("/ControlPlane/Configurations/{configuration_id}")(update("patch"))

    @router.delete("/ControlPlane/Configurations/{configuration_id}")
    async def delete_configuration(configuration_id: str, request: Request) -> Response:
        orc.delete_configuration(configuration_id)
        return _accepted(orc, request, None, "delete", configuration_id)

    @router.get("/ControlPlane/Operations/{operation_id}")
    async def get_operation(operation_id: str) -> dict[str, Any]:
        return orc.get_operation(operation_id)

    # Conversations

    @router.get("/Conversations")
    async def list_conversations(request: Request) -> dict[str, Any]:
        statuses = _statuses(request.query_params.getlist("status"))
        found = orc.conversations(statuses, channel_id=request.query_params.get("channelId"))
        return paginate(request, "conversations", [orc.with_participants(c) for c in found])

    @router.post("/Conversations", status_code=201)
    async def create_conversation(body: ConversationCreateIn) -> dict[str, Any]:
        return orc.with_participants(await orc.create_conversation(body))

    @router.get("/Conversations/{conversation_id}")
    async def get_conversation(conversation_id: str) -> dict[str, Any]:
        return orc.with_participants(orc.conversation(conversation_id))

    @router.put("/Conversations/{conversation_id}")
    async def put_conversation(conversation_id: str, body: ConversationUpdateIn) -> dict[str, Any]:
        return orc.with_participants(await orc.update_conversation(conversation_id, body))

    @router.patch("/Conversations/{conversation_id}")
    async def patch_conversation(conversation_id: str, body: ConversationPatchIn) -> dict[str, Any]:
        return orc.with_participants(await orc.patch_conversation(conversation_id, body))

    @router.delete("/Conversations/{conversation_id}")
    async def delete_conversation(conversation_id: str, request: Request) -> Response:
        orc.delete_conversation(conversation_id)
        body, op_id = orc.operation(request, {"conversationId": conversation_id})
        return JSONResponse(body, status_code=202, headers=_operation_headers(body, op_id))

    # Participants

    @router.get("/Conversations/{conversation_id}/Participants")
    async def list_participants(conversation_id: str, request: Request) -> dict[str, Any]:
        orc.conversation(conversation_id)
        return paginate(request, "participants", orc.participants(conversation_id))

    @router.post("/Conversations/{conversation_id}/Participants", status_code=201)
    async def create_participant(conversation_id: str, body: ParticipantIn) -> dict[str, Any]:
        return await orc.add_participant(conversation_id, body)

    @router.get("/Conversations/{conversation_id}/Participants/{participant_id}")
    async def get_participant(conversation_id: str, participant_id: str) -> dict[str, Any]:
        orc.conversation(conversation_id)
        return orc.participant(conversation_id, participant_id)

    @router.put("/Conversations/{conversation_id}/Participants/{participant_id}")
    async def put_participant(
        conversation_id: str, participant_id: str, body: ParticipantReplaceIn
    ) -> dict[str, Any]:
        return await orc.replace_participant(conversation_id, participant_id, body)

    # Communications

    @router.get("/Conversations/{conversation_id}/Communications")
    async def list_communications(conversation_id: str, request: Request) -> dict[str, Any]:
        orc.conversation(conversation_id)
        found = orc.communications(conversation_id, request.query_params.get("channelId"))
        return paginate(request, "communications", found)

    @router.post("/Conversations/{conversation_id}/Communications")
    async def create_communication(conversation_id: str, body: CommunicationIn) -> Response:
        doc, created = await orc.add_communication(conversation_id, body)
        return JSONResponse(doc, status_code=201 if created else 200)

    @router.get("/Conversations/{conversation_id}/Communications/{communication_id}")
    async def get_communication(conversation_id: str, communication_id: str) -> dict[str, Any]:
        orc.conversation(conversation_id)
        return orc.communication(conversation_id, communication_id)

    # Actions

    @router.post("/Conversations/{conversation_id}/Actions", status_code=202)
    async def create_action(conversation_id: str, body: ActionIn) -> dict[str, Any]:
        return await orc.run_action(conversation_id, body)

    @router.get("/Conversations/{conversation_id}/Actions/{action_id}")
    async def get_action(conversation_id: str, action_id: str) -> dict[str, Any]:
        return orc.action(conversation_id, action_id)

    return router


def _accepted(
    orc: Orchestrator, request: Request, key: str | None, scope: str, configuration_id: str
) -> JSONResponse:
    body, op_id = orc.operation(request, {"configurationId": configuration_id})
    return orc.remember(key, scope, 202, body, _operation_headers(body, op_id))


def _operation_headers(body: dict[str, Any], op_id: str) -> dict[str, str]:
    return {"Operation-Id": op_id, "Location": body["statusUrl"], "Retry-After": "0"}


def _statuses(raw: list[str]) -> list[str]:
    statuses = [s.strip().upper() for value in raw for s in value.split(",") if s.strip()]
    for status in statuses:
        if status not in STATUSES:
            raise bad_request(
                f"Invalid request: status: {status!r} is not one of ACTIVE, INACTIVE, CLOSED"
            )
    return statuses


class AppUrlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


def _control(orc: Orchestrator) -> APIRouter:
    router = APIRouter(tags=["control"])

    @router.put("/app-url")
    async def set_app_url(body: AppUrlIn) -> dict[str, Any]:
        """Point the sandbox at the app: the default configuration's webhooks and the env."""
        ctx = orc.ctx
        try:
            ctx.settings = SandboxSettings.model_validate(
                {**ctx.settings.model_dump(), "app_url": body.url}
            )
        except ValidationError as exc:
            raise bad_request(f"Invalid request: url: {exc.errors()[0]['msg']}") from exc
        orc.ensure_default_configuration()
        return {"url": ctx.settings.app_url, "webhook": ctx.settings.app_url + "/webhook"}

    @router.get("/conversations")
    async def conversations(request: Request, channel: str | None = None) -> dict[str, Any]:
        """Every conversation with its participants, oldest first."""
        statuses = _statuses(request.query_params.getlist("status"))
        found = orc.conversations(statuses, channel=channel.upper() if channel else None)
        return {"conversations": [orc.with_participants(c) for c in found]}

    @router.get("/conversations/{conversation_id}/messages")
    async def messages(conversation_id: str, after: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """Communications after cursor ``after``; with ``wait``, long-poll for the next one."""
        orc.conversation(conversation_id)
        found = await orc.changes.wait_until(
            lambda: orc.communications_with_seq(conversation_id, after), min(wait, 60.0)
        )
        cursor = found[-1][0] if found else after
        return {"messages": [{"seq": s, **doc} for s, doc in found], "cursor": cursor}

    return router


def _participant_name(given: dict[str, Any]) -> str:
    """A participant's name: given, or (as Twilio fills it) its first address; never null."""
    if given.get("name"):
        return str(given["name"])
    addresses = given.get("addresses") or []
    return str(addresses[0].get("address") or "") if addresses else ""


def _no_participant(where: str, channel: str, address: str) -> TwilioError:
    """Twilio records a communication only between the conversation's participants."""
    return bad_request(
        f"Invalid request: {where}.address: {address} on {channel} is no participant's address"
        " in this conversation (add the participant first)"
    )
