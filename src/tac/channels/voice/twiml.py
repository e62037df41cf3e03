"""The reference's import path of ``TwiMLBuilderBase`` (see :mod:`tac._compat.twiml`)."""

from tac._compat.twiml import TwiMLBuilderBase

__all__ = ["TwiMLBuilderBase"]
