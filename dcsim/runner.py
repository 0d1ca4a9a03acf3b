"""run(scenario) -> RunResult: resolve the scenario, build the model, simulate, summarize.

Wall-clock time is read here, outside the model, only to report it and drive progress bars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dcsim import __version__
from dcsim.build import build_model
from dcsim.metrics.summary import summarize
from dcsim.results import RunResult
from dcsim.scenario import Scenario, load_scenario

Progress = Callable[[float], None]


def resolve(scenario: Scenario | str | Path, overrides: Iterable[str] = ()) -> Scenario:
    if isinstance(scenario, Scenario):
        if overrides:
            from dcsim.scenario.loading import apply_overrides, scenario_from_dict

            data = apply_overrides(scenario.model_dump(mode="json"), overrides)
            return scenario_from_dict(data, scenario.source, base_dir=scenario.base_dir)
        return scenario
    return load_scenario(scenario, overrides)


def run(
    scenario: Scenario | str | Path, *, seed: int | None = None, overrides: Iterable[str] = (),
    progress: Progress | None = None,
) -> RunResult:
    """Simulate one scenario (a Scenario or a YAML path) and return its RunResult."""
    resolved = resolve(scenario, overrides)
    started = time.perf_counter()
    model = build_model(resolved, seed)
    end_time = model.simulation.run(progress)
    wall = time.perf_counter() - started
    jobs = model.recorder.jobs_frame()
    timeseries = model.recorder.timeseries_frame(end_time)
    summary = summarize(
        scenario_name=resolved.name, seed=model.seed, version=__version__, sim_time=end_time, wall_time=wall,
        jobs=jobs, timeseries=timeseries, capacity=model.cluster.capacity, pue=resolved.energy.pue,
        carbon_intensity=resolved.energy.carbon_intensity,
        workload=model.workload.as_dict() if model.workload is not None else None,
        events=model.simulation.events,
    )
    resolved_dict: dict[str, Any] = resolved.model_dump(mode="json")
    resolved_dict["seed"] = model.seed
    resolved_dict["policies"] = model.policies
    return RunResult(scenario=resolved_dict, seed=model.seed, version=__version__, summary=summary,
                     jobs=jobs, timeseries=timeseries)
