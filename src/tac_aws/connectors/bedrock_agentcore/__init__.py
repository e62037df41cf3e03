"""Amazon Bedrock AgentCore runtimes on TAC."""

from tac_aws.connectors.bedrock_agentcore.config import RuntimeConfig, WebSocketConfig
from tac_aws.connectors.bedrock_agentcore.connector import (
    BedrockAgentCoreConnector,
    parse_streaming_response,
)

__all__ = [
    "BedrockAgentCoreConnector",
    "RuntimeConfig",
    "WebSocketConfig",
    "parse_streaming_response",
]
