"""The ``opentac`` command line (also ``python -m tac``).

Each command lives beside the code it drives and registers itself here through a
``register(subparsers)`` function, imported lazily so that ``opentac --version`` loads nothing
heavy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from tac._version import __version__

# command name -> module with `register(subparsers) -> None`
_COMMANDS: dict[str, str] = {
    "sandbox": "tac.sandbox._cli",
    "demo": "tac._demo",
}


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opentac",
        description="opentac: Twilio Agent Connect, open, with a local Twilio sandbox.",
    )
    parser.add_argument("--version", action="version", version=f"opentac {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands if commands is not None else _COMMANDS:
        module = _load(_COMMANDS[name])
        if module is not None:
            module.register(subparsers)
    return parser


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The module itself is missing (not yet part of this build) or an optional extra is.
        if exc.name is not None and (module_name.startswith(exc.name) or "tac" not in exc.name):
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    wanted = [args_list[0]] if args_list and args_list[0] in _COMMANDS else []
    parser = build_parser(wanted)
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    result = handler(args)
    return int(result or 0)
