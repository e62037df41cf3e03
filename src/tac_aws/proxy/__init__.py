"""The AWS Lambda between Twilio and a Bedrock AgentCore runtime (``pip install
"opentac[agentcore]"``): :class:`AgentCoreLambdaProxy` and :class:`TwilioSignatureValidator`."""

from tac_aws.proxy.agentcore_lambda import AgentCoreLambdaProxy, InboundCallTwiMLHandler
from tac_aws.proxy.validation import TwilioSignatureValidator

__all__ = ["AgentCoreLambdaProxy", "InboundCallTwiMLHandler", "TwilioSignatureValidator"]
