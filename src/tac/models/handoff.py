"""Human handoff: the payload Studio (and Flex) receive, and the handoff waiting on a call."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tac.models.session import PendingHandoffData

__all__ = ["HandoffPayload", "PendingHandoffData"]


class HandoffPayload(BaseModel):
    """What a Studio flow reads as ``{{flow.data.HandoffData.*}}`` (voice and digital alike).

    ``attributes`` are the app's routing attributes plus the LLM's ``reason``; with Flex they
    become TaskRouter task attributes.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    conversation_id: str = Field(alias="conversationId", min_length=1)
    store_id: str = Field(alias="storeId", min_length=1)
    profile_id: str = Field(default="", alias="profileId")
    attributes: dict[str, Any] = Field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The camelCase JSON object."""
        return self.model_dump(by_alias=True, mode="json")

    def to_json(self) -> str:
        """The JSON string ConversationRelay forwards as ``HandoffData``."""
        return json.dumps(self.to_wire(), ensure_ascii=False)
