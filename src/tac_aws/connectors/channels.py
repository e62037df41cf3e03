"""The channels an AWS connector builds (``tac.connectors.channels``, at the partner's path)."""

from tac.connectors.channels import ChannelResponse, ConnectorChannels

__all__ = ["ChannelResponse", "ConnectorChannels"]
