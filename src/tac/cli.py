"""The ``opentac`` command line (also ``python -m tac``).

Each command lives beside the code it drives and registers itself here through a
``register(subparsers)`` function. Only the command being run is imported, so ``opentac
--version`` and ``opentac --help`` load nothing heavy; the help lists every command from the
table below. A command whose optional dependencies are missing says which extra to install.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from tac._version import __version__

# command name -> (module with `register(subparsers) -> None`, one-line help, extras it needs)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "sandbox": ("tac.sandbox._cli", "run the local Twilio sandbox", "sandbox"),
    "demo": (
        "tac._demo",
        "run the sandbox, an example agent and a web console to try them in",
        "server,sandbox",
    ),
}


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with ``commands`` fully registered (all of them by default) and the others
    listed by name only, so that ``--help`` shows every command without importing it."""
    parser = argparse.ArgumentParser(
        prog="opentac",
        description="opentac: Twilio Agent Connect, open, with a local Twilio sandbox.",
        epilog="Run `opentac COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"opentac {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", parser_class=argparse.ArgumentParser
    )
    for name, (module_name, help_text, _) in _COMMANDS.items():
        if commands is None or name in commands:
            importlib.import_module(module_name).register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _missing_extra(command: str, exc: ImportError) -> str | None:
    """What to install when ``exc`` is a missing optional dependency, else ``None``."""
    missing = exc.name or ""
    if (
        missing == "tac"
        or missing.startswith("tac.")
        or (isinstance(exc, ModuleNotFoundError) and not missing)
    ):
        return None  # opentac itself is broken: let the traceback say where
    extras = _COMMANDS[command][2]
    what = f" (missing module {missing.partition('.')[0]!r})" if missing else ""
    return f'opentac {command} needs the "{extras}" extras{what}: pip install "opentac[{extras}]"'


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in _COMMANDS else None
    try:
        parser = build_parser([command] if command else ())
        args = parser.parse_args(args_list)
        handler: Any = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0
        return int(handler(args) or 0)
    except ImportError as exc:  # a missing extra, or tac.server saying which one
        problem = _missing_extra(command, exc) if command else None
        if problem is None:
            raise
        print(f"opentac: {problem}", file=sys.stderr)
        return 2
