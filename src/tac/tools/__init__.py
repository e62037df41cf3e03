"""Tools for LLM function calling, and the built-in knowledge, memory and handoff tools.

Define a tool with :func:`function_tool` (or :func:`create_tool` from an explicit schema), then
hand it to any LLM with ``to_openai_format()``, ``to_responses_format()``,
``to_anthropic_format()``, ``to_bedrock_format()``, ``to_gemini_format()``,
``to_realtime_format()`` or ``to_openai_agents_sdk_tool()``.
"""

from tac.tools.base import InjectedToolArg, TACTool, create_tool, function_tool
from tac.tools.handoff import (
    build_handoff_payload,
    create_studio_handoff_tool,
    post_studio_handoff,
)
from tac.tools.knowledge import create_knowledge_tool, search_knowledge
from tac.tools.memory import create_memory_tool, retrieve_profile_memory

__all__ = [
    "InjectedToolArg",
    "TACTool",
    "build_handoff_payload",
    "create_knowledge_tool",
    "create_memory_tool",
    "create_studio_handoff_tool",
    "create_tool",
    "function_tool",
    "post_studio_handoff",
    "retrieve_profile_memory",
    "search_knowledge",
]
