"""Tools for AWS agent frameworks, at ``twilio-agent-connect-aws``'s import paths."""

from tac_aws.tools.strands import create_memory_tool

__all__ = ["create_memory_tool"]
