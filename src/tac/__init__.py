"""opentac: connect any LLM agent to Twilio's channels, Conversation Memory and human handoff.

Import package ``tac`` (the same names as Twilio Agent Connect); distribution ``opentac``.
``import tac`` loads neither FastAPI nor Redis: the server, sandbox and Redis store load lazily.
"""

from tac._version import __version__

__all__ = ["__version__"]
