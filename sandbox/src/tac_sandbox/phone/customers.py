"""Simulated customers: a person texting the agent on SMS, WhatsApp, RCS or Chat.

The first message creates the conversation (with the sandbox's default configuration), the
CUSTOMER and AI_AGENT participants and the inbound communication, as Twilio does; later messages
reuse the open conversation. Replies are what the agent sends to the customer's address (the
``SEND_MESSAGE`` action). The control API is organised by channel,
``/sandbox/customers/{channel}/...``; the voice caller gets its own section.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from fastapi import APIRouter

    from tac_sandbox._client import SandboxClient
    from tac_sandbox.products.conversations import Orchestrator

# The messaging channels a simulated customer can use (voice: the caller, a later addition).
CHANNELS = ("sms", "whatsapp", "rcs", "chat")


_issued: set[str] = set()


def default_address(channel: str) -> str:
    """A fresh customer address in the channel's format, never the same twice per process."""
    channel = _check_channel(channel)
    while True:
        if channel == "chat":
            address = f"web-visitor-{secrets.token_hex(4)}"
        else:
            number = "+1415" + "".join(secrets.choice("0123456789") for _ in range(7))
            address = number if channel == "sms" else f"{channel}:{number}"
        if address not in _issued:
            _issued.add(address)
            return address


def _check_channel(channel: str) -> str:
    value = channel.lower()
    if value not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    return value


@dataclass(frozen=True)
class Message:
    """One message the customer sent or received."""

    text: str
    id: str
    conversation_id: str
    channel: str
    author: str
    seq: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_communication(cls, doc: dict[str, Any], seq: int) -> Message:
        return cls(
            text=str(doc.get("content", {}).get("text", "")),
            id=doc["id"],
            conversation_id=doc["conversationId"],
            channel=str(doc["author"]["channel"]).lower(),
            author=doc["author"]["address"],
            seq=seq,
            raw=doc,
        )


class Customer:
    """A person on one messaging channel, scripted from Python.

    ::

        customer = sandbox.customer("sms")
        await customer.send("Where is my order?")
        reply = await customer.next_reply(timeout=5)
    """

    def __init__(
        self,
        client: SandboxClient,
        channel: str = "sms",
        address: str | None = None,
        *,
        name: str | None = None,
        participant_type: str = "CUSTOMER",
    ) -> None:
        self.channel = _check_channel(channel)
        self.participant_type = participant_type
        self.address = address or default_address(self.channel)
        self.name = name
        self.conversation_id: str | None = None
        self._client = client
        self._cursor: int | None = None
        self._pending: deque[Message] = deque()

    async def send(self, text: str) -> Message:
        """Text the agent; returns the inbound message as the sandbox stored it."""
        result = await self._client.customer_send(
            self.channel,
            text,
            self.address,
            name=self.name,
            participant_type=self.participant_type,
        )
        self.conversation_id = result["conversationId"]
        if self._cursor is None:
            self._cursor = int(result["seq"]) - 1
        return Message.from_communication(result["message"], int(result["seq"]))

    async def next_reply(self, timeout: float = 10.0) -> Message:
        """The agent's next message to this customer; ``TimeoutError`` if none comes in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while not self._pending:
            wait = min(max(deadline - loop.time(), 0.0), 60.0)  # the server caps one poll at 60 s
            result = await self._client.customer_replies(
                self.channel, self.address, after=self._cursor or 0, wait=wait
            )
            for item in result["replies"]:
                self._pending.append(Message.from_communication(item, int(item["seq"])))
            if result["replies"]:
                self._cursor = int(result["cursor"])
            if loop.time() >= deadline:
                break
        if not self._pending:
            raise TimeoutError(f"no reply to {self.address} ({self.channel}) within {timeout}s")
        return self._pending.popleft()

    async def ask(self, text: str, timeout: float = 10.0) -> Message:
        """Send ``text`` and return the agent's next reply."""
        await self.send(text)
        return await self.next_reply(timeout)

    def __repr__(self) -> str:
        return f"Customer(channel={self.channel!r}, address={self.address!r})"


class CustomerMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    address: str | None = Field(default=None, min_length=1)
    name: str | None = None
    participantType: Literal["CUSTOMER", "UNKNOWN"] = Field(
        default="CUSTOMER",
        description="UNKNOWN: the participant arrives unresolved (no profile), for apps that "
        "reconcile participants themselves",
    )


def control_router(orc: Orchestrator) -> APIRouter:
    """``/sandbox/customers/{channel}/...``: act as a customer, await the agent's replies."""
    from fastapi import APIRouter

    router = APIRouter(prefix="/customers", tags=["control"])

    @router.post("/{channel}/messages", status_code=201)
    async def send(channel: str, body: CustomerMessageIn) -> dict[str, Any]:
        """The customer texts the agent (creates the conversation on the first message)."""
        name = _channel_or_400(channel)
        address = body.address or default_address(name)
        conversation, message, created = await orc.customer_message(
            name.upper(), address, body.text, body.name, body.participantType
        )
        return {
            "channel": name,
            "address": address,
            "conversationId": conversation["id"],
            "created": created,
            "seq": orc.communication_seq(message["id"]),
            "message": message,
        }

    @router.get("/{channel}/replies")
    async def replies(
        channel: str, address: str, after: int = 0, wait: float = 0.0
    ) -> dict[str, Any]:
        """What the agent sent to ``address`` after cursor ``after``; long-polls ``wait`` s."""
        name = _channel_or_400(channel)
        found = await orc.changes.wait_until(
            lambda: orc.replies_to(name.upper(), address, after), max(0.0, min(wait, 60.0))
        )
        return {
            "replies": [{"seq": seq, **doc} for seq, doc in found],
            "cursor": found[-1][0] if found else after,
        }

    return router


def _channel_or_400(channel: str) -> str:
    from tac_sandbox._errors import bad_request

    try:
        return _check_channel(channel)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
