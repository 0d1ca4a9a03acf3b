"""run(scenario) -> RunResult: resolve the scenario, build the model, simulate, summarize.

Wall-clock time is read here, outside the model, only to report it and drive progress bars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dcsim.build import build_model
from dcsim.metrics.inference_summary import inference_summary
from dcsim.metrics.network_frames import (
    link_timeseries_frame,
    links_frame,
    network_summary,
    storage_summary,
    storage_timeseries_frame,
)
from dcsim.metrics.serving_frames import ServiceInfo
from dcsim.metrics.summary import round_floats, summarize
from dcsim.results import RunResult
from dcsim.scenario import Scenario, load_scenario
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
        jobs=jobs, timeseries=timeseries, capacity=model.cluster.capacity, pue=resolved.energy.pue,
        carbon_intensity=resolved.energy.carbon_intensity,
        workload=model.workload.as_dict() if model.workload is not None else None,
        events=model.simulation.events,
    )
    frames: dict[str, Any] = {}
    inference = resolved.workload.inference
    if inference is not None and model.serving is not None:
        infos = [ServiceInfo(s.name, s.slo.ttft, s.slo.tpot) for s in inference.services]
        frames = {"requests": model.recorder.requests_frame(infos),
                  "replicas": model.recorder.replicas_frame(end_time),
                  "replica_timeseries": model.recorder.replica_timeseries_frame()}
        services = {}
        for service, runtime in zip(inference.services, model.serving.engine.services, strict=True):
            report = model.serving.reports[service.name].as_dict()
            services[service.name] = {"slo": service.slo.ttft is not None or service.slo.tpot is not None,
                                      "scale_up_blocked": runtime.scale_up_blocked, "workload": report}
        section = inference_summary(frames["requests"], frames["replicas"], end_time, services)
        summary = _insert_after(summary, "training" if "training" in summary else "cluster", "inference",
                                round_floats(section))
    recorder = model.recorder
    if recorder.link_info:
        link_rows = recorder.link_rows  # joined from the recorder's chunks: once
        frames["links"] = links_frame(recorder.link_info, link_rows, end_time)
        frames["link_timeseries"] = link_timeseries_frame(recorder.link_info, link_rows, end_time)
        summary = _insert_after(summary, "utilization", "network", round_floats(network_summary(frames["links"])))
    if recorder.storage_info:
        frames["storage_timeseries"] = storage_timeseries_frame(recorder.storage_rows, end_time)
        tiers = storage_summary(frames["storage_timeseries"], recorder.storage_info)
        summary = _insert_after(summary, "network" if "network" in summary else "utilization", "storage",
                                round_floats(tiers))
    resolved_dict: dict[str, Any] = resolved.model_dump(mode="json")
    resolved_dict["seed"] = model.seed
    resolved_dict["policies"] = model.policies
    return RunResult(scenario=resolved_dict, seed=model.seed, version=__version__, summary=summary,
                     jobs=jobs, timeseries=timeseries, **frames)


def _insert_after(mapping: dict[str, Any], after: str, key: str, value: Any) -> dict[str, Any]:
    """A copy of `mapping` with `key` placed right after `after` (summary.json reads top-down)."""
    result: dict[str, Any] = {}
    for name, item in mapping.items():
        result[name] = item
        if name == after:
            result[key] = value
    result.setdefault(key, value)
    return result
