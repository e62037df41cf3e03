"""What ``on_delivery_status`` receives: a message Twilio could not deliver."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tac.models.conversation import Communication
from tac.models.session import Channel

__all__ = ["FAILED_DELIVERY_STATUSES", "DeliveryStatus"]

FAILED_DELIVERY_STATUSES: frozenset[str] = frozenset({"FAILED", "UNDELIVERED"})
"""The delivery statuses (uppercase, as on the wire) that reach ``on_delivery_status``."""


class DeliveryStatus(BaseModel):
    """A message of the conversation that did not reach one of its recipients.

    Attributes:
        status: the recipient's delivery status as Twilio sent it (``FAILED``, ``UNDELIVERED``).
        conversation_id: the conversation of the message.
        communication_id: the message (``COMMUNICATION_UPDATED``'s ``data.id``).
        channel: the channel the message went out on.
        address: the recipient's address (``+1…``, ``whatsapp:+1…``, a chat identity).
        participant_id: the recipient's participant id.
        text: the text of the message that failed.
        communication: the whole communication from the event.
    """

    model_config = ConfigDict(frozen=True)

    status: str
    conversation_id: str
    communication_id: str
    channel: Channel
    address: str | None = None
    participant_id: str | None = None
    text: str | None = None
    communication: Communication
