"""Golden summary.json of the quickstart and (shortened) shared-H100 scenarios, and byte-identical determinism.

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
SHARED_GOLDEN = Path(__file__).parent / "golden" / "shared_h100_summary.json"
SHARED_SHORT = ["workload.training.jobs=20", "workload.inference.services.0.requests.count=6000", "horizon=1h"]


def quickstart_summary_text() -> str:
    summary = dcsim.run(SCENARIOS / "quickstart.yaml").summary
    summary["wall_time_s"] = 0.0  # the only field allowed to differ between runs
    return summary_json(summary)


def shared_summary_text() -> str:
    summary = dcsim.run(SCENARIOS / "shared_h100.yaml", overrides=SHARED_SHORT).summary
    summary["wall_time_s"] = 0.0
    return summary_json(summary)


def test_shared_h100_matches_golden_summary() -> None:
    assert json.loads(shared_summary_text()) == json.loads(SHARED_GOLDEN.read_text())


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
    SHARED_GOLDEN.write_text(shared_summary_text())
    print(f"wrote {GOLDEN} and {SHARED_GOLDEN}")
