"""Tools for LLM function calling, and the built-in knowledge and memory tools."""

from tac.tools.base import InjectedToolArg, TACTool, create_tool, function_tool

__all__ = ["InjectedToolArg", "TACTool", "create_tool", "function_tool"]
