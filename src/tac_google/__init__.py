"""Google connectors for opentac at ``twilio-agent-connect-google``'s import paths
(``pip install "opentac[google]"``): import them from ``tac_google.connectors``."""

from tac_google._version import __version__

__all__ = ["__version__"]
