"""``parse_streaming_response`` at ``twilio-agent-connect-aws``'s module path."""

from tac_aws.connectors.bedrock_agentcore.connector import parse_streaming_response

__all__ = ["parse_streaming_response"]
