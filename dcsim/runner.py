"""run(scenario) -> RunResult: resolve the scenario, build the model, simulate, summarize.

Wall-clock time is read here, outside the model, only to report it and drive progress bars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dcsim.build.model import build_model
from dcsim.metrics.summary import round_floats, summarize
from dcsim.results import RunResult
from dcsim.scenario import Scenario, load_scenario
from dcsim.subsystems import SUBSYSTEMS, RunFrames
from dcsim.version import __version__

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
        timeseries=timeseries, capacity=model.cluster.capacity, pue=resolved.energy.pue,
        carbon_intensity=resolved.energy.constant_carbon_intensity, events=model.simulation.events,
    )
    frames: dict[str, Any] = {"jobs": jobs, "timeseries": timeseries}
    run_frames = RunFrames(model, end_time, jobs, timeseries, frames)  # later subsystems see earlier frames
    for subsystem in SUBSYSTEMS:
        contribution = subsystem.collect(run_frames)
        if contribution is None:
            continue
        frames.update(contribution.frames)
        after = next((key for key in subsystem.after if key in summary), None)
        summary = insert_after(summary, after, round_floats(dict(contribution.sections)))
    resolved_dict: dict[str, Any] = resolved.model_dump(mode="json")
    resolved_dict["seed"] = model.seed
    resolved_dict["policies"] = model.policies
    return RunResult(scenario=resolved_dict, seed=model.seed, version=__version__, summary=summary, **frames)


def insert_after(mapping: dict[str, Any], after: str | None, sections: dict[str, Any]) -> dict[str, Any]:
    """A copy of `mapping` with `sections` placed right after key `after` (at the end if None or absent),
    so summary.json reads top-down."""
    result: dict[str, Any] = {}
    for name, item in mapping.items():
        result[name] = item
        if name == after:
            result.update(sections)
    for name, item in sections.items():
        result.setdefault(name, item)
    return result
