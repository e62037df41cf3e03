"""TAC's servers for AWS: ``TACAWSFastAPIServer`` behind a load balancer (``pip install
"opentac[aws,server]"``) and ``TACAgentCoreApp`` inside a Bedrock AgentCore runtime (``pip
install "opentac[agentcore]"``; imported on first use)."""

from typing import Any

from tac_aws.server.fastapi_server import TACAWSFastAPIServer
from tac_aws.server.middleware import ALBForwardedHeadersMiddleware

__all__ = [
    "ALBForwardedHeadersMiddleware",
    "TACAWSFastAPIServer",
    "TACAgentCoreApp",
    "TACAgentCoreWebSocketAdapter",
]


def __getattr__(name: str) -> Any:
    if name in ("TACAgentCoreApp", "TACAgentCoreWebSocketAdapter"):
        from tac_aws.server import agentcore_app

        return getattr(agentcore_app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
