"""Turn memory and the customer's profile into system-prompt text."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

__all__ = ["AdapterOptions", "MemoryPromptBuilder"]

_HEADER = (
    "# Customer Context\n"
    "You have access to the following information about this customer from previous "
    "interactions:\n\n"
)


class AdapterOptions(BaseModel):
    """What the adapters put in the prompt.

    ``profile_traits``: left unset, every trait group of the profile is included; set to
    ``None`` or ``[]``, none is; set to a list of group names, only those groups are.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile_traits: list[str] | None = None

    def trait_groups(self) -> tuple[bool, list[str] | None]:
        """``(include_profile, groups)``: groups ``None`` means all of them."""
        if "profile_traits" not in self.model_fields_set:
            return True, None
        if not self.profile_traits:
            return False, None
        return True, list(self.profile_traits)


def _render_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_render_value(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _profile_section(context: ConversationSession, groups: list[str] | None) -> str | None:
    profile = context.profile
    if profile is None or not profile.traits:
        return None
    lines = []
    for group, traits in profile.traits.items():
        if groups is not None and group not in groups:
            continue
        rendered = ", ".join(
            f"{key}: {_render_value(value)}" for key, value in traits.items() if value is not None
        )
        if rendered:
            lines.append(f"- {group}: {rendered}")
    if not lines:
        return None
    return "## Customer Profile\nInformation about this customer:\n" + "\n".join(lines)


class MemoryPromptBuilder:
    """Build the ``# Customer Context`` prompt section from memory and the session's profile."""

    @staticmethod
    def build(
        memory_response: TACMemoryResponse | None = None,
        context: ConversationSession | None = None,
        options: AdapterOptions | None = None,
    ) -> str | None:
        """The customer-context text, or ``None`` when there is nothing to say."""
        include_profile, groups = (options or AdapterOptions()).trait_groups()
        sections: list[str] = []
        if context is not None and include_profile:
            profile = _profile_section(context, groups)
            if profile:
                sections.append(profile)
        if memory_response is not None:
            sections.extend(memory_response.build_memory_prompts())
        if not sections:
            return None
        return _HEADER + "\n\n".join(sections)

    @staticmethod
    def compose(
        system_prompt: str | None = None,
        memory_response: TACMemoryResponse | None = None,
        context: ConversationSession | None = None,
        options: AdapterOptions | None = None,
    ) -> str:
        """``system_prompt`` followed by the customer context (either may be absent)."""
        memory = MemoryPromptBuilder.build(memory_response, context, options)
        parts = [part for part in (system_prompt, memory) if part]
        return "\n\n".join(parts)
