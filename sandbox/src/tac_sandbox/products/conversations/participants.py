"""Adding and replacing participants (identity resolution through Memory)."""

from __future__ import annotations

import time
from typing import Any

from tac_sandbox._errors import TwilioError, bad_request
from tac_sandbox._ids import ttid
from tac_sandbox._time import iso
from tac_sandbox.products._orchestrator_models import (
    ParticipantIn,
    ParticipantReplaceIn,
)
from tac_sandbox.products.conversations._shared import (
    _bare,
    _dumps,
    _ordered_participant,
    _participant_name,
    logger,
)
from tac_sandbox.products.conversations.reads import Reads


class Participants(Reads):
    """Adding and replacing participants (identity resolution through Memory)."""

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
