"""How ``make bench`` turns measurements into docs/performance.md (no measurement runs here)."""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.__main__ import _replace
from benchmarks.bench_observability import CYCLES, _summary

pytestmark = pytest.mark.unit

DOCUMENT = """# Performance

Last run: earlier.

## Media

old media

## Observability: the cost

old figures
| a | b |

## Voice

old voice
"""


def test_a_rerun_section_replaces_the_one_with_its_heading_and_keeps_the_rest() -> None:
    new = "## Observability: the cost\n\nnew figures\n"

    text = _replace(DOCUMENT, [new])

    assert "new figures" in text
    assert "old figures" not in text
    assert "| a | b |" not in text
    assert "old media" in text
    assert "old voice" in text
    assert "Last run: earlier." in text
    assert text.index("## Media") < text.index("new figures") < text.index("## Voice")


def test_a_section_with_a_new_heading_is_appended() -> None:
    text = _replace(DOCUMENT, ["## Scale\n\nthree instances\n"])

    assert text.rstrip().endswith("three instances")
    assert text.count("## ") == 4


def _phases(cpu_by_cycle: dict[str, list[float]]) -> dict[str, list[dict[str, Any]]]:
    return {
        name: [
            # the collector's passes: 0.1 s of a phase, and whatever a phase takes above 0.8 s
            {
                "cycle": cycle,
                "config": name,
                "cpu": cpu,
                "collector": 0.1 + max(cpu - 0.8, 0),
                "replies": 1000,
            }
            for cycle, cpu in enumerate(values)
        ]
        for name, values in cpu_by_cycle.items()
    }


def test_the_summary_weighs_every_phase_so_a_rare_expensive_phase_counts() -> None:
    # one phase in eight pays for a full collection: a median of phases would not see it
    off = [0.8] * CYCLES
    traced = [0.8] * CYCLES
    for cycle in range(0, CYCLES, 8):
        traced[cycle] = 1.6

    summary = _summary(_phases({"both off": off, "tracing on": traced}))

    cpu, collector, difference = summary["tracing on"]
    lumps = len(range(0, CYCLES, 8))
    expected = 1e6 * (0.8 * CYCLES + 0.8 * lumps) / (1000 * CYCLES)
    assert cpu == pytest.approx(expected)
    assert collector == pytest.approx(100 + 1e6 * 0.8 * lumps / (1000 * CYCLES))
    assert summary["both off"][1] == pytest.approx(100.0)
    assert summary["both off"][0] == pytest.approx(800.0)
    assert difference.startswith(f"{expected / 800 - 1:+.1%} (")


def test_the_summary_shows_each_half_of_the_cycles_against_its_own_both_off() -> None:
    half = CYCLES // 2
    # the machine slows down half-way through: each half is compared with its own both off
    off = [0.8] * half + [1.0] * (CYCLES - half)
    metrics = [0.84] * half + [1.05] * (CYCLES - half)

    _, _, difference = _summary(_phases({"both off": off, "metrics on": metrics}))["metrics on"]

    assert difference.endswith("(+5.0%, +5.0%)")
