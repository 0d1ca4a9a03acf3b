"""Golden summary.json of the quickstart scenario, and byte-identical determinism.

Regenerate deliberately after an intended behaviour change:
    python -m tests.test_golden --regenerate
and explain the change in CHANGELOG.md. Never regenerate just to make this test pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dcsim
from dcsim.results import summary_json
from tests.helpers import SCENARIOS

GOLDEN = Path(__file__).parent / "golden" / "quickstart_summary.json"


def quickstart_summary_text() -> str:
    summary = dcsim.run(SCENARIOS / "quickstart.yaml").summary
    summary["wall_time_s"] = 0.0  # the only field allowed to differ between runs
    return summary_json(summary)


def test_quickstart_matches_golden_summary() -> None:
    expected = json.loads(GOLDEN.read_text())
    actual = json.loads(quickstart_summary_text())
    assert actual == expected


def test_same_seed_gives_byte_identical_summary_json() -> None:
    assert quickstart_summary_text() == quickstart_summary_text()


def test_different_seed_gives_a_different_run() -> None:
    one = dcsim.run(SCENARIOS / "quickstart.yaml", seed=1).summary["training"]["wait_s"]
    two = dcsim.run(SCENARIOS / "quickstart.yaml", seed=2).summary["training"]["wait_s"]
    assert one != two


if __name__ == "__main__" and "--regenerate" in sys.argv:
    GOLDEN.write_text(quickstart_summary_text())
    print(f"wrote {GOLDEN}")
