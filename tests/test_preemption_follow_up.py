"""Passes at one instant (issue 13, Philly speed): follow-up passes decided from the preempting pass's
waiting list (ranked.FollowUp), passes run inline when due next (TrainingEngine._run_pass), and the
walk passing over blocks of queued jobs that cannot fit (KeyBlocks.mins). Each must leave the run
exactly as it was: jobs, job segments, level rows and the summary, the event count included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given

import dcsim
from dcsim.engine.training import TrainingEngine
from dcsim.policies.scheduling import ranked
from tests.test_preemption_speed import POLICIES, SETTINGS, run, same, workloads

OVERLOAD = {"rows": [(float(10 * (i // 6)), 20.0 + (i * 37) % 90 + (i % 7) / 3, [1, 1, 2, 3, 1, 4][i % 6], "V100")
                     for i in range(60)], "k80": False, "v100_nodes": 1, "startup": 0.0, "costs": None}


def run_plain(tmp_path: Path, load: dict[str, Any], policy: dict[str, Any]) -> dcsim.RunResult:
    """Without the shortcuts: every pass walks and every pass is its own simpy event."""
    mp = pytest.MonkeyPatch()
    mp.setattr(TrainingEngine, "inline_passes_allowed", False)
    mp.setattr(ranked.FollowUp, "starts", lambda self, view: None)
    try:
        return run(tmp_path, load, policy, incremental=True)
    finally:
        mp.undo()


def same_levels(a: dcsim.RunResult, b: dcsim.RunResult) -> None:
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries, check_exact=True)
    assert a.summary["events"] == b.summary["events"]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p['name']}-{p.get('params', {})}")
def test_follow_ups_and_inline_passes_change_nothing_under_overload(tmp_path: Path, policy: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    hits: list[bool] = []
    starts = ranked.FollowUp.starts

    def counted(self: ranked.FollowUp, view: Any) -> Any:
        found = starts(self, view)
        hits.append(found is not None)
        return found

    monkeypatch.setattr(ranked.FollowUp, "starts", counted)
    fast = run(tmp_path, OVERLOAD, policy, incremental=True)
    monkeypatch.undo()
    assert any(hits)  # the shortcut was taken (free preemptions on one model)
    plain = run_plain(tmp_path, OVERLOAD, policy)
    same(fast, plain)
    same_levels(fast, plain)


@pytest.mark.parametrize("policy", POLICIES[:1] + POLICIES[3:4], ids=["tiresias", "las-round"])
@SETTINGS
@given(load=workloads())
def test_follow_ups_and_inline_passes_change_nothing(tmp_path: Path, policy: dict[str, Any],
                                                     load: dict[str, Any]) -> None:
    # Random workloads: two models or one, suspension costs or none, start-up or none.
    fast = run(tmp_path, load, policy, incremental=True)
    plain = run_plain(tmp_path, load, policy)
    same(fast, plain)
    same_levels(fast, plain)

