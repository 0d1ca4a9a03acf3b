"""Every shipped scenario validates and runs briefly (a shortened copy of itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

import dcsim
from dcsim.scenario import load_scenario
from dcsim.scenario.inference import SyntheticRequests
from dcsim.scenario.schema import TraceTraining
from dcsim.workload.requests_trace import request_trace_problems
from dcsim.workload.trace import check_trace_header
from tests.helpers import SCENARIOS

SHIPPED = sorted(SCENARIOS.glob("*.yaml"))


def test_there_are_scenarios() -> None:
    assert {p.name for p in SHIPPED} >= {"quickstart.yaml", "philly.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_validates_and_runs(path: Path) -> None:
    scenario = load_scenario(path)
    training = scenario.workload.training
    if isinstance(training, TraceTraining):
        problems = check_trace_header(training, scenario.base_dir)
        if problems:
            pytest.skip(f"trace not available here: {problems[0]}")
        shorten = ["workload.training.limit=1500"]
    else:
        shorten = ["workload.training.jobs=80"] if training is not None else []
    inference = scenario.workload.inference
    if inference is not None:
        problems = request_trace_problems(scenario)
        if problems:
            pytest.skip(f"trace not available here: {problems[0]}")
        for index, service in enumerate(inference.services):
            field = "count" if isinstance(service.requests, SyntheticRequests) else "limit"
            shorten.append(f"workload.inference.services.{index}.requests.{field}=2000")
    if scenario.energy.uses_series:
        from dcsim.energy.loading import SeriesError, energy_inputs

        try:
            energy_inputs(scenario.energy, scenario.base_dir, scenario.horizon)
        except SeriesError as exc:
            if "not found" not in str(exc):
                raise
            pytest.skip(f"series not available here: {exc}")
    result = dcsim.run(path, overrides=shorten)
    summary = result.summary
    assert summary["scenario"] == scenario.name
    if training is not None:
        assert summary["training"]["jobs_completed"] + summary["training"]["jobs_unfinished"] \
            + summary["training"]["jobs_rejected"] == summary["training"]["jobs_submitted"] > 0
    if inference is not None:
        counts = summary["inference"]
        assert counts["completed"] + counts["dropped"] + counts["unfinished"] == counts["requests"] > 0
    assert 0.0 < summary["utilization"]["allocated"]["all"] <= 1.0
