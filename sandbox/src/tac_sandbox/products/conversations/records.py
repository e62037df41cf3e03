"""Creating, updating and deleting conversations (grouping, status changes)."""

from __future__ import annotations

import time
from typing import Any

from tac_sandbox._errors import TwilioError, bad_request
from tac_sandbox._ids import ttid
from tac_sandbox._time import iso
from tac_sandbox.products._orchestrator_models import (
    ConversationCreateIn,
    ConversationPatchIn,
    ConversationUpdateIn,
)
from tac_sandbox.products.conversations._shared import (
    _dumps,
)
from tac_sandbox.products.conversations.participants import Participants


class Conversations(Participants):
    """Creating, updating and deleting conversations (grouping, status changes)."""

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
