"""What Twilio does in the Conversation Orchestrator for a ConversationRelay call with
``conversationConfiguration``: the call's conversation and its transcriptions.

Works on the Orchestrator product's state object (``ctx.service("conversations")``); installed
as the services ``conversations.create_voice_conversation`` and
``conversations.add_voice_communication`` by :mod:`tac_sandbox._voice_control`.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import TwilioError

VOICE = "VOICE"
_SECONDS_PER_WORD = 0.3


def _orchestrator(ctx: SandboxContext) -> Any:
    orchestrator = ctx.service("conversations")
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


async def create_voice_conversation(
    ctx: SandboxContext, configuration_id: str, call_sid: str, customer: str, agent: str
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

    orc = _orchestrator(ctx)
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
    ctx: SandboxContext,
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
    orc = _orchestrator(ctx)
    conversation = orc.conversation(conversation_id)
    participants = orc.participants(conversation_id)
    now = time.time()
    words = []
    for index, word in enumerate(text.split()):
        start = now - _SECONDS_PER_WORD * (len(text.split()) - index)
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


async def end_voice_conversation(ctx: SandboxContext, conversation_id: str) -> None:
    """A call that failed closes its conversation (nothing stays ACTIVE for it)."""
    orc = _orchestrator(ctx)
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


def install_services(ctx: SandboxContext) -> None:
    """Provide the two services (unless the Orchestrator product provides its own)."""

    async def create(
        configuration_id: str, call_sid: str, customer: str, agent: str
    ) -> dict[str, Any]:
        return await create_voice_conversation(ctx, configuration_id, call_sid, customer, agent)

    async def add(
        conversation_id: str,
        call_sid: str,
        *,
        author: str,
        recipient: str,
        text: str,
        inbound: bool,
    ) -> dict[str, Any]:
        return await add_voice_communication(
            ctx,
            conversation_id,
            call_sid,
            author=author,
            recipient=recipient,
            text=text,
            inbound=inbound,
        )

    if ctx.service("conversations.create_voice_conversation") is None:
        ctx.provide("conversations.create_voice_conversation", create)

    async def end(conversation_id: str) -> None:
        await end_voice_conversation(ctx, conversation_id)

    if ctx.service("conversations.end_voice_conversation") is None:
        ctx.provide("conversations.end_voice_conversation", end)
    if ctx.service("conversations.add_voice_communication") is None:
        ctx.provide("conversations.add_voice_communication", add)
