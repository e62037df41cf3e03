"""The reference's import path of ``MemoryPromptBuilder``."""

from tac.adapters._prompt import MemoryPromptBuilder

__all__ = ["MemoryPromptBuilder"]
