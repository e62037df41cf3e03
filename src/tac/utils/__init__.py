"""Redaction helpers at the reference SDK's import path (``tac.utils``).

The masking itself lives in :mod:`tac.core.logging`, which applies it to every log record.
"""

from tac.utils.redaction import mask_address, mask_email, mask_phone, redact_twiml_parameters

__all__ = ["mask_address", "mask_email", "mask_phone", "redact_twiml_parameters"]
