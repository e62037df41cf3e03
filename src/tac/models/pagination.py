"""The reference's import path of ``PaginationMeta`` (defined in :mod:`tac.models.conversation`)."""

from tac.models.conversation import PaginationMeta

__all__ = ["PaginationMeta"]
