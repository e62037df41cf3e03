"""Load the example Twilio payloads in tests/fixtures/twilio-examples."""

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "twilio-examples"


def example(name: str) -> Any:
    """A JSON example by file name (``orchestrator-communication-created.json``)."""
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def example_text(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")
