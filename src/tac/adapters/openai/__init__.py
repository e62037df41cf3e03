"""``with_tac_memory`` for the OpenAI SDK (imports ``openai`` only when called)."""

from tac.adapters.openai.adapter import with_tac_memory

__all__ = ["with_tac_memory"]
