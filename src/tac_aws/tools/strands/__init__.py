"""TAC's tools for Strands agents: :func:`create_memory_tool`."""

from tac_aws.tools.strands.memory import create_memory_tool

__all__ = ["create_memory_tool"]
