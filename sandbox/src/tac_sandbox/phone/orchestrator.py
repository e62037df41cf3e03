"""What Twilio does in the Conversation Orchestrator for a ConversationRelay call with
``conversationConfiguration``: the call's conversation and its transcriptions.

:class:`VoiceConversations` works on the Orchestrator product (``ctx.products.conversations``);
the phone (:mod:`tac_sandbox.phone.control`) installs it as ``ctx.products.voice_conversations``
and hands it to its callers as their :class:`~tac_sandbox.phone.caller.OrchestratorLink`.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import TwilioError

if TYPE_CHECKING:
    from tac_sandbox.products.conversations import Orchestrator

VOICE = "VOICE"
_SECONDS_PER_WORD = 0.3


def _orchestrator(ctx: SandboxContext) -> Orchestrator:
    orchestrator = ctx.products.conversations
    if orchestrator is None:
        raise TwilioError(
            409,
            "the sandbox has no Conversation Orchestrator"
            " (tac_sandbox.products.conversations is not installed)",
        )
    return orchestrator


def _owner(participants: list[dict[str, Any]], address: str) -> dict[str, Any] | None:
    for participant in participants:
        if any(a["channel"] == VOICE and a["address"] == address for a in participant["addresses"]):
            return participant
    return None


class VoiceConversations:
    """The Orchestrator steps of a call, in this process (an ``OrchestratorLink``)."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    async def create_voice_conversation(
        self, configuration_id: str, call_sid: str, customer: str, agent: str
    ) -> dict[str, Any]:
        """The call's ACTIVE conversation: a CUSTOMER (``customer``, VOICE, ``channelId`` = the
        CallSid) and an AI_AGENT (``agent``), findable with ``?channelId=<CallSid>&status=ACTIVE``.

        A conversation the configuration's grouping already has for these two (ACTIVE or
        INACTIVE) is reused, reactivated, and its customer gets the new call's address entry.
        """
        from tac_sandbox.products._orchestrator_models import (
            AddressIn,
            ConversationCreateIn,
            ParticipantIn,
            ParticipantReplaceIn,
        )

        orc = _orchestrator(self.ctx)
        configuration = orc.configuration(configuration_id)
        grouping = configuration.get(
            "conversationGroupingType", "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE"
        )
        customer_address = {"channel": VOICE, "address": customer, "channelId": call_sid}
        agent_address = {"channel": VOICE, "address": agent}
        probe = [
            {"type": "CUSTOMER", "addresses": [customer_address]},
            {"type": "AI_AGENT", "addresses": [agent_address]},
        ]
        existing = orc.find_grouped(configuration_id, grouping, probe, ("ACTIVE", "INACTIVE"))
        if existing is None:
            body = ConversationCreateIn(
                configurationId=configuration_id,
                participants=[
                    ParticipantIn(type="CUSTOMER", addresses=[AddressIn(**customer_address)]),
                    ParticipantIn(type="AI_AGENT", addresses=[AddressIn(**agent_address)]),
                ],
            )
            created: dict[str, Any] = await orc.create_conversation(body)
            conversation_id = created["id"]
        else:
            conversation_id = existing["id"]
            if existing["status"] == "INACTIVE":
                await orc.set_status(existing, "ACTIVE")
            participant = _owner(orc.participants(conversation_id), customer)
            if participant is None:
                await orc.add_participant(
                    conversation_id,
                    ParticipantIn(type="CUSTOMER", addresses=[AddressIn(**customer_address)]),
                )
            else:
                addresses = [AddressIn(**a) for a in participant["addresses"]]
                addresses.append(AddressIn(**customer_address))
                await orc.replace_participant(
                    conversation_id,
                    participant["id"],
                    ParticipantReplaceIn(
                        name=participant.get("name"),
                        type=participant.get("type"),
                        profileId=participant.get("profileId"),
                        addresses=addresses,
                    ),
                )
        conversation: dict[str, Any] = orc.with_participants(orc.conversation(conversation_id))
        return conversation

    async def add_voice_communication(
        self,
        conversation_id: str,
        call_sid: str,
        *,
        author: str,
        recipient: str,
        text: str,
        inbound: bool,
    ) -> dict[str, Any]:
        """One utterance of the call as a TRANSCRIPTION communication (``channelId`` = CallSid;
        transcription channel 0 for the caller, 1 for the agent)."""
        orc = _orchestrator(self.ctx)
        conversation = orc.conversation(conversation_id)
        participants = orc.participants(conversation_id)
        now = time.time()
        count = len(text.split())
        words = []
        for index, word in enumerate(text.split()):
            start = now - _SECONDS_PER_WORD * (count - index)
            words.append(
                {
                    "text": word,
                    "startTime": _iso_ms(start),
                    "endTime": _iso_ms(start + _SECONDS_PER_WORD * 0.8),
                }
            )
        content = {
            "type": "TRANSCRIPTION",
            "text": text,
            "transcription": {
                "channel": 0 if inbound else 1,
                "confidence": 0.96,
                "engine": "deepgram",
                "words": words,
            },
        }
        stored: dict[str, Any] = await orc.store_communication(
            conversation,
            author=_party(participants, author),
            content=content,
            recipients=[_party(participants, recipient)],
            channel_id=call_sid,
            occurred_at=words[0]["startTime"] if words else None,
        )
        return stored

    async def end_voice_conversation(self, conversation_id: str) -> None:
        """A call that failed closes its conversation (nothing stays ACTIVE for it)."""
        orc = _orchestrator(self.ctx)
        conversation = orc.conversation(conversation_id)
        if conversation["status"] != "CLOSED":
            await orc.set_status(conversation, "CLOSED")


def _party(participants: list[dict[str, Any]], address: str) -> dict[str, Any]:
    party: dict[str, Any] = {"address": address, "channel": VOICE}
    owner = _owner(participants, address)
    if owner is not None:
        party["participantId"] = owner["id"]
    return party


def _iso_ms(moment: float) -> str:
    stamp = datetime.fromtimestamp(moment, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
