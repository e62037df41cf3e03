"""``opentac sandbox``: registered by the sandbox distribution, or a hint to install it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tac.sandbox import INSTALL_HINT


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` command to the ``opentac`` CLI."""
    try:
        from tac_sandbox.cli import register as register_sandbox
    except ModuleNotFoundError as exc:
        if exc.name not in ("tac_sandbox", "tac_sandbox.cli"):
            raise
        parser = subparsers.add_parser("sandbox", help="run the local Twilio sandbox")
        parser.set_defaults(handler=_missing)
        return
    register_sandbox(subparsers)


def _missing(args: argparse.Namespace) -> int:
    print(INSTALL_HINT, file=sys.stderr)
    return 2
