"""``make bench``: run every ``benchmarks/bench_*.py`` in name order, write docs/performance.md.

Each bench module has ``run() -> str`` returning a markdown section (medians/percentiles and
the machine/setup). A bench that fails is reported in its section instead of stopping the run.
``python -m benchmarks observability voice`` runs only those and replaces their sections in the
existing docs/performance.md (matched by heading), keeping the others.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "performance.md"

HEADER = """# Performance

Written by `make bench` (`python -m benchmarks`); do not edit by hand. Each section comes from
one `benchmarks/bench_*.py` module: what it measures, how (processes, pinning, load), and the
medians and percentiles it saw. Numbers depend on the machine and on what else runs on it.
"""


def main(argv: list[str]) -> int:
    selected = set(argv)
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    if selected:
        modules = [m for m in modules if m in selected or m.removeprefix("bench_") in selected]
    sections: list[str] = []
    failed = 0
    for name in modules:
        started = time.monotonic()
        print(f"benchmarks: {name} ...", flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            section = module.run()
        except Exception:
            failed += 1
            section = f"## {name}\n\nFailed:\n\n```\n{traceback.format_exc()}```\n"
        sections.append(section.rstrip() + "\n")
        print(f"benchmarks: {name} done in {time.monotonic() - started:.0f} s", flush=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    if selected and OUTPUT.exists():
        note = f"\n(This section: {stamp}, Python {platform.python_version()}.)\n"
        text = _replace(OUTPUT.read_text(encoding="utf-8"), [s + note for s in sections])
    else:
        meta = f"\nLast run: {stamp}, Python {platform.python_version()}.\n"
        text = HEADER + meta + "\n" + "\n".join(sections)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"benchmarks: wrote {OUTPUT.relative_to(ROOT)}")
    return 1 if failed else 0


def _replace(document: str, sections: list[str]) -> str:
    """``document`` with each of ``sections`` in place of the section with its heading (its
    first line), or appended when there is none."""
    head, *parts = document.split("\n## ")
    old = ["## " + part.rstrip() + "\n" for part in parts]
    for section in sections:
        heading = section.partition("\n")[0]
        matches = [i for i, part in enumerate(old) if part.partition("\n")[0] == heading]
        if matches:
            old[matches[0]] = section
        else:
            old.append(section)
    return head.rstrip() + "\n\n" + "\n".join(old)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main(sys.argv[1:]))
