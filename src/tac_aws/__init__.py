"""AWS connectors for opentac, at the import paths of ``twilio-agent-connect-aws``
(``pip install "opentac[aws]"``): ``tac_aws.connectors`` and ``tac_aws.server``."""

from tac_aws._version import __version__

__all__ = ["__version__"]
