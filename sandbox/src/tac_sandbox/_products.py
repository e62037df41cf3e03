"""What the products of one sandbox offer each other: ``ctx.products``, one typed attribute each.

A product module's ``install(ctx)`` sets its attribute; another that needs it reads the
attribute and handles ``None`` (a sandbox built with a subset of products, ``create_app(...,
products=[...])``). Go-to-definition and mypy follow every cross-product call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tac_sandbox._webhooks import WebhookDispatcher
    from tac_sandbox.phone.control import VoicePhone
    from tac_sandbox.phone.orchestrator import VoiceConversations
    from tac_sandbox.products.calls import CallsService
    from tac_sandbox.products.conversations import Orchestrator
    from tac_sandbox.products.intelligence import IntelligenceService
    from tac_sandbox.products.knowledge import KnowledgeService
    from tac_sandbox.products.memory import MemoryService
    from tac_sandbox.products.studio import StudioService


@dataclass
class Products:
    """The installed products' services (``None``: not installed in this sandbox)."""

    webhooks: WebhookDispatcher | None = None
    conversations: Orchestrator | None = None
    memory: MemoryService | None = None
    knowledge: KnowledgeService | None = None
    studio: StudioService | None = None
    calls: CallsService | None = None
    intelligence: IntelligenceService | None = None
    phone: VoicePhone | None = None
    voice_conversations: VoiceConversations | None = None
    # Services of modules written before `Products` (``SandboxContext.provide``), by name.
    named: dict[str, Any] = field(default_factory=dict)
