"""Partner connectors identify themselves in the User-Agent of every Twilio request
(:class:`PartnerConnector` lives in :mod:`tac.models.partner`, which every layer may import)."""

from tac.models.partner import PartnerConnector

__all__ = ["PartnerConnector"]
