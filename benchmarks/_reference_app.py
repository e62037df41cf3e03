"""``benchmarks._messaging_app`` run on the reference SDK (2.5.0), for comparison.

Runs in a separate virtualenv that has ``twilio-agent-connect`` instead of opentac (both install
the ``tac`` package). The reference has no ``TWILIO_API_BASE_URL``: its one base-URL helper is
pointed at the benchmark's Twilio stand-in; nothing else of it is changed.
"""

from __future__ import annotations

import os

from benchmarks._reference import redirect_reference


def main() -> None:
    redirect_reference(os.environ["TWILIO_API_BASE_URL"])
    from benchmarks._messaging_app import main as serve

    serve()


if __name__ == "__main__":
    main()
