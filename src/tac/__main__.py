"""``python -m tac``: the same command line as ``opentac``."""

from tac.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
