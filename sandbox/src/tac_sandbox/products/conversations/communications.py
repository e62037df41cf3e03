"""Communications: created through the API, the SEND_MESSAGE action, and simulated customers."""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError

from tac_sandbox._db import loads
from tac_sandbox._errors import bad_request
from tac_sandbox._ids import sid, ttid
from tac_sandbox._time import iso
from tac_sandbox.products._orchestrator_models import (
    ActionIn,
    AddressIn,
    CommunicationIn,
    ConversationCreateIn,
    ParticipantIn,
    ParticipantRefIn,
    SendMessagePayloadIn,
)
from tac_sandbox.products.conversations._shared import (
    _dumps,
    _no_participant,
    _owner,
    agent_address,
)
from tac_sandbox.products.conversations.records import Conversations


class Communications(Conversations):
    """Communications: created through the API, the SEND_MESSAGE action, and simulated customers."""

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
            if owner is None and where == "author":
                raise _no_participant(where, party["channel"], party["address"])
            participant_id = owner["id"] if owner is not None else None
        resolved = {"address": party["address"], "channel": party["channel"]}
        if participant_id is not None:
            # A recipient not yet a participant (an agent the app has not added) has none.
            resolved["participantId"] = participant_id
        return resolved

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
        if owner is None and where == "payload.from":
            raise _no_participant(where, resolved_channel, ref.address)
        party: dict[str, Any] = {"address": ref.address, "channel": resolved_channel}
        if owner is not None:
            party["participantId"] = owner["id"]
        return party

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
