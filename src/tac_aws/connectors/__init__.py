"""Connectors for AWS agent runtimes, at ``twilio-agent-connect-aws``'s import paths.

Each builds its channels (``connector.voice``, ``connector.channels.messaging``) and answers
them through TAC's connector router, so it can share a TAC with other connectors.
"""

from tac_aws.connectors.bedrock_agentcore import BedrockAgentCoreConnector
from tac_aws.connectors.bedrock_connector import BedrockConnector
from tac_aws.connectors.channels import ConnectorChannels
from tac_aws.connectors.strands_connector import StrandsConnector

__all__ = [
    "BedrockAgentCoreConnector",
    "BedrockConnector",
    "ConnectorChannels",
    "StrandsConnector",
]
