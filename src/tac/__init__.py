"""opentac: connect any LLM agent to Twilio's channels, Conversation Memory and human handoff.

Import package ``tac`` (the same names as Twilio Agent Connect); distribution ``opentac``.
``import tac`` loads neither FastAPI nor Redis: the server, sandbox and Redis store load lazily.
"""

from tac._version import __version__
from tac.core import TAC, PartnerConnector, TACConfig, TACConfigError, get_logger
from tac.utils import mask_address, mask_email, mask_phone

__all__ = [
    "TAC",
    "PartnerConnector",
    "TACConfig",
    "TACConfigError",
    "__version__",
    "get_logger",
    "mask_address",
    "mask_email",
    "mask_phone",
]


def __getattr__(name: str) -> object:
    """The reference's deprecated names (``TwiMLOptions``), with a DeprecationWarning."""
    from tac._compat.aliases import deprecated_attribute

    return deprecated_attribute(__name__, name)
