"""Partner connectors identify themselves in the User-Agent of every Twilio request."""

from __future__ import annotations

from enum import Enum

__all__ = ["PartnerConnector"]


class PartnerConnector(Enum):
    """Known connector packages built on TAC: ``(package name, connector name)``."""

    AWS_STRANDS = ("tac-aws", "StrandsConnector")
    AWS_BEDROCK = ("tac-aws", "BedrockConnector")
    AWS_AGENTCORE = ("tac-aws", "BedrockAgentCoreConnector")
    AZURE_AGENT_FRAMEWORK = ("tac-azure", "AgentFrameworkConnector")
    AZURE_VOICE_LIVE = ("tac-azure", "VoiceLiveConnector")

    @property
    def package_name(self) -> str:
        return self.value[0]

    @property
    def connector_name(self) -> str:
        return self.value[1]
