"""The reference's import path of ``BaseAPIClient`` (see :mod:`tac._compat.base_client`)."""

from tac._compat.base_client import BaseAPIClient
from tac.models.partner import PartnerConnector

__all__ = ["BaseAPIClient", "PartnerConnector"]
