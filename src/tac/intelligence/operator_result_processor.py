"""The reference's import path of ``OperatorResultProcessor``."""

from tac.intelligence._processor import OperatorProcessingResult, OperatorResultProcessor

__all__ = ["OperatorProcessingResult", "OperatorResultProcessor"]
