"""Adapters that put TAC's memory into LLM SDK calls.

:class:`MemoryPromptBuilder` renders memory and the customer's profile as prompt text;
``tac.adapters.openai.with_tac_memory`` applies it to an OpenAI client (imports ``openai``
only there).
"""

from tac.adapters._prompt import AdapterOptions, MemoryPromptBuilder

__all__ = ["AdapterOptions", "MemoryPromptBuilder"]
