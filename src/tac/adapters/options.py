"""The reference's import path of ``AdapterOptions``."""

from tac.adapters._prompt import AdapterOptions

__all__ = ["AdapterOptions"]
